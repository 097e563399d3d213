import ChildProcesses
import CustomExecutorAPI
import Foundation
import JobIdentity
import TestSizes
import Testing

/// ci-local runs whole pipelines through the four executables.
@Suite(.tags(.large)) struct CILocalTests {
  func project(_ yaml: String) throws -> String {
    let directory = NSTemporaryDirectory() + "cilocal-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try yaml.write(toFile: "\(directory)/.gitlab-ci.yml", atomically: true, encoding: .utf8)
    try "input data\n".write(toFile: "\(directory)/input.txt", atomically: true, encoding: .utf8)
    return directory
  }

  /// `settings`: the driver's settings file's text, beyond the root setting the tests need.
  func ciLocal(_ directory: String, backend: Backend, _ extra: [String] = [], settings: String? = nil) throws -> Run {
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = backend.rawValue
    env["CI_SLURM_DATA_ROOT"] = "\(directory)/.data"
    env["CI_SLURM_SETTINGS"] = Package.rootSettings
    if let settings {
      let path = "\(directory)/settings.toml"
      try ((getuid() == 0 ? "allow_root = true\n" : "") + settings).write(toFile: path, atomically: true, encoding: .utf8)
      env["CI_SLURM_SETTINGS"] = path
    }
    return try run(["\(Package.bin)/ci-local", "\(directory)/.gitlab-ci.yml"] + extra, env: env, cwd: directory)
  }

  @Test(arguments: Backend.available)
  func aPipelineWithStagesNeedsMatrixAndArtifacts(backend: Backend) throws {
    let directory = try project("""
      stages: [build, analyze, report]
      variables:
        SCRATCH: /tmp
        OUT: "$SCRATCH/never-used"
      build:
        stage: build
        script:
          - cat input.txt > built.txt
          - echo "built on $SLURM_JOB_NAME"
        artifacts:
          paths: [built.txt]
      analyze:
        stage: analyze
        variables:
          SCHEDULER_PARAMETERS: "--array=0-2"
        parallel:
          matrix:
            - ITEM: [alpha, beta]
        script:
          - test -f built.txt
          - echo "$ITEM shard $SLURM_ARRAY_TASK_ID"
      report:
        stage: report
        needs: [analyze]
        script:
          - echo "report after all analyze jobs; OUT=$OUT"
        after_script:
          - echo "after_script sees $CI_JOB_STATUS"
      """)
    let result = try ciLocal(directory, backend: backend)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    #expect(result.stdout.contains("[task 2] alpha shard 2"))
    #expect(result.stdout.contains("[task 0] beta shard 0"))
    #expect(result.stdout.contains("report after all analyze jobs; OUT=/tmp/never-used"))
    #expect(result.stdout.contains("after_script sees success"))
    #expect(result.stdout.contains("Pipeline ") && result.stdout.contains("passed, 4 of 4 jobs succeeded"))
    // Every job's Slurm job is gone, and the driver left no job directories behind.
    let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/.data/jobs")) ?? []
    #expect(leftovers.isEmpty)
  }

  @Test(arguments: Backend.available)
  func aFailingJobFailsThePipelineAndSkipsWhatDependsOnIt(backend: Backend) throws {
    let directory = try project("""
      first:
        stage: build
        script: [echo one, exit 4]
      tolerated:
        stage: build
        allow_failure: {exit_codes: [9]}
        script: [exit 9]
      second:
        stage: test
        script: [echo never]
      """)
    let result = try ciLocal(directory, backend: backend)
    #expect(result.status == .exited(1))
    #expect(result.stdout.contains("ERROR: Job failed: exit code 4"))
    #expect(result.stdout.contains("failed (allowed)"))
    #expect(result.stdout.contains("second") && result.stdout.contains("skipped"))
    #expect(!result.stdout.contains("\nnever"))
  }

  /// Under a minute left once the margin is kept: the driver submits nothing and reports
  /// the CI job's timeout itself, before ci-local's kill (ClockTests has the rest).
  @Test(arguments: Backend.available)
  func aJobWithLessThanAMinuteOfItsTimeoutLeftIsNotSubmitted(backend: Backend) throws {
    let directory = try project("""
      slow:
        timeout: 50 seconds
        script: [echo started, sleep 120]
      """)
    let started = Date()
    let result = try ciLocal(directory, backend: backend, ["--graceful-kill-timeout", "20"])
    #expect(result.status == .exited(1))
    #expect(result.stdout.contains("Not submitted: "), "\(result.stdout)")
    #expect(result.stdout.contains("ERROR: Job failed: exit code 124"))
    #expect(!result.stdout.contains("\nstarted"))
    #expect(Date().timeIntervalSince(started) < 50)
  }

  /// ci-local as a student runs it: no CI_SLURM_BACKEND in the environment.
  func ciLocalPlain(_ arguments: [String], cwd: String) throws -> Run {
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = nil
    env["CI_SLURM_DATA_ROOT"] = "\(cwd)/.data"
    env["CI_SLURM_SETTINGS"] = Package.rootSettings
    return try run(["\(Package.bin)/ci-local"] + arguments, env: env, cwd: cwd)
  }

  @Test(arguments: Backend.available)
  func theLogsSectionsShowAsFoldedTitlesAndTheJUnitReportIsWritten(backend: Backend) throws {
    let directory = try project("""
      plain:
        script: [echo "plain output"]
        artifacts:
          paths: [.ci-slurm/junit.xml]
      scatter:
        variables:
          SCHEDULER_PARAMETERS: "--array=0-2"
        script:
          - echo "shard $SLURM_ARRAY_TASK_ID"
          - test "$SLURM_ARRAY_TASK_ID" != 1
        allow_failure:
          exit_codes: [75]
        artifacts:
          when: always
          paths: [.ci-slurm/junit.xml]
      """)
    let result = try ciLocal(directory, backend: backend)
    let name = backend.schedulerName
    let lines = result.stdout.split(separator: "\n").map(String.init)
    #expect(!result.stdout.contains("section_start"), "\(result.stdout)")
    // The plain job: folded reproducer, open "queued" closed before the job's first line.
    let waited = try #require(lines.firstIndex { $0.contains("waited") && $0.contains("in the queue") }, "\(result.stdout)")
    let first = try #require(lines.firstIndex { $0.hasSuffix("] plain output") || $0 == "plain output" })
    #expect(waited < first)
    #expect(lines.contains { $0.hasSuffix("▸ \(name): summary") })
    #expect(lines.contains { $0.contains("▸ \(name): reproduce job ") })
    #expect(lines.contains { $0.hasSuffix("▾ \(name): queued") })
    // The array: task 1 open, the others folded; partly failed, allowed by its code.
    #expect(lines.contains { $0.hasSuffix("▸ \(name): task 0 (exit 0)") })
    #expect(lines.contains { $0.hasSuffix("▾ \(name): task 1 (exit 1)") })
    #expect(lines.contains { $0.hasSuffix("▾ \(name): summary") })
    #expect(result.stdout.contains("[task 2] shard 2"))
    #expect(result.stdout.contains("failed (allowed)"), "\(result.stdout)")
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    // Both JUnit reports went out with their artifacts: the partly failed array's too, as
    // its artifacts:when says.
    let reports = Self.artifacts(in: directory).filter { $0.hasSuffix(".ci-slurm/junit.xml") }
    let plain = try #require(reports.first { $0.contains("plain") }, "\(reports)")
    let xml = try String(contentsOfFile: "\(directory)/.ci-local/\(plain)", encoding: .utf8)
    #expect(xml.contains("<testcase name=\"plain\" classname=\"plain ("), "\(xml)")
    #expect(!xml.contains("<failure"))
    let scatter = try #require(reports.first { $0.contains("scatter") }, "\(reports)")
    #expect(try String(contentsOfFile: "\(directory)/.ci-local/\(scatter)", encoding: .utf8).contains("exit code 1"))
  }

  /// The files under ci-local's store, relative to `.ci-local`.
  static func artifacts(in directory: String) -> [String] {
    FileManager.default.enumerator(atPath: "\(directory)/.ci-local")?.allObjects as? [String] ?? []
  }

  /// A failed job that prints 20 MB: the log stops under the runner's 4 MiB with the one
  /// note and the tail, and the complete log it keeps as an artifact (when: always) is
  /// byte for byte what the job printed; its reports are kept as GitLab keeps them.
  @Test(arguments: Backend.available)
  func aTwentyMegabyteLogIsCutWithANoteAndKeptWholeAsAnArtifact(backend: Backend) throws {
    let directory = try project("""
      big:
        script: [seq 1 3000000, exit 3]
        artifacts:
          when: always
          paths: [.ci-slurm/logs/]
          reports:
            junit: .ci-slurm/junit.xml
            annotations: .ci-slurm/annotations.json
      """)
    let result = try ciLocal(directory, backend: backend, settings: "slurm_job_url = \"https://portal.example/jobs/{id}\"\n")
    #expect(result.status == .exited(1), "\(result.stderr)")
    let printed = Data((1...3_000_000).map { "\($0)\n" }.joined().utf8)
    #expect(printed.count > 20_000_000)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    let notes = lines.filter { $0.contains("The log reached the runner's output_limit (4 MiB)") }
    #expect(notes.count == 1, "\(lines.suffix(40))")
    #expect(notes.first?.contains("in this job's artifacts, .ci-slurm/logs/big/ (job.log)") == true)
    let header = try #require(lines.firstIndex { $0.hasSuffix("Last 20 lines of the job's output (complete: .ci-slurm/logs/big/job.log)") })
    // The output's last 20 lines: seq's last 19, then the runner's echo of `exit 3`. Each
    // as the job printed it, after ci-local's `[big] ` prefix.
    let tail: [String] = lines[header + 1..<header + 21].map { line in String(line.split(separator: " ", maxSplits: 1).last ?? "") }
    let expected: [String] = (2_999_982...3_000_000).map { String($0) } + ["$ exit 3"]
    #expect(tail == expected)
    #expect(lines.contains { $0.contains("\(backend.schedulerName): summary") })
    // What the runner would hold (ci-local's job log keeps GitLab's bytes): under 4 MiB.
    let kept = Self.artifacts(in: directory)
    let jobLog = try #require(kept.first { $0.hasSuffix("big.log") }, "\(kept)")
    let logSize = try #require(try FileManager.default.attributesOfItem(atPath: "\(directory)/.ci-local/\(jobLog)")[.size] as? Int)
    #expect(logSize < 4 << 20 && logSize > 3 << 20)
    // The artifact is the stage's whole output: seq's 20 MB between the runner's echoes of
    // the two commands, byte for byte.
    let log = try #require(kept.first { $0.hasSuffix(".ci-slurm/logs/big/job.log") }, "\(kept)")
    let echo = { (command: String) in Data("\u{1b}[32;1m$ \(command)\u{1b}[0;m\n".utf8) }
    let artifact = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/.ci-local/\(log)"))
    #expect(artifact == echo("seq 1 3000000") + printed + echo("exit 3"))
    let annotations = try #require(kept.first { $0.hasSuffix(".ci-slurm/annotations.json") }, "\(kept)")
    // GitLab's format: the Slurm job linked through slurm_job_url.
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/.ci-local/\(annotations)")))
    let links = try #require((json as? [String: [[String: [String: String]]]])?[backend.schedulerName], "\(json)")
    let link = try #require(links.first?["external_link"])
    let id = try #require(link["label"]?.split(separator: " ").last.map(String.init))
    #expect(link["label"] == "\(backend.schedulerName) job \(id)" && link["url"] == "https://portal.example/jobs/\(id)")
    #expect(result.stdout.contains("\(backend.schedulerName) job \(id) "))
    #expect(kept.contains { $0.hasSuffix(".ci-slurm/junit.xml") })
  }

  @Test func severalJobsAtOnceStreamEachLineAfterTheJobsName() throws {
    let directory = try project("""
      one:
        script: [echo "from one", printf 'no newline at the end']
      two:
        script: [echo "from two"]
      """)
    let result = try ciLocalPlain(["--jobs", "2", "--backend", "local"], cwd: directory)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    let lines = result.stdout.split(separator: "\n").map(String.init)
    #expect(lines.contains("[one] from one"))
    #expect(lines.contains("[two] from two"))
    #expect(lines.contains("[one] no newline at the end"))
    // --backend local reaches the phases.
    #expect(lines.contains { $0.hasPrefix("[one] Submitted local job") })
    // Every line of a job's log has its prefix until the summary table.
    let body = lines.prefix { !$0.hasPrefix("job ") }
    #expect(body.allSatisfy { $0.hasPrefix("[one] ") || $0.hasPrefix("[two] ") }, "\(body)")
    // Not a terminal: no colour codes, neither ci-local's nor the runner's script echoes.
    #expect(!result.stdout.contains("\u{1b}["))
    let coloured = try ciLocalPlain(["--jobs", "2", "--backend", "local", "--color"], cwd: directory)
    #expect(coloured.stdout.contains("\u{1b}["))
  }

  @Test func aRunningJobsLinesShowBeforeItEnds() throws {
    // The job waits for a file the test creates only once the job's first line has reached
    // ci-local's stdout: with output held until the job ends, it would never come.
    let directory = try project("""
      waits:
        script: ['echo "waiting for go"', 'for i in $(seq 600); do test -f "$CI_SLURM_TEST_GO" && break; sleep 0.1; done', 'test -f "$CI_SLURM_TEST_GO" && echo "got go"']
      other:
        script: [echo other]
      """)
    let go = "\(directory)/go"
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = nil
    env["CI_SLURM_DATA_ROOT"] = "\(directory)/.data"
    env["CI_SLURM_SETTINGS"] = Package.rootSettings
    let child = try ChildProcess(
      arguments: ["\(Package.bin)/ci-local", "--jobs", "2", "--backend", "local", "--variable", "CI_SLURM_TEST_GO=\(go)"],
      environment: env, workingDirectory: directory)
    var out = Data()
    let finished = PipeDrain.drain(child, deadline: Date().addingTimeInterval(300)) { stream, data in
      guard stream == .stdout else { return }
      out.append(data)
      if String(decoding: out, as: UTF8.self).contains("[waits] waiting for go\n") { FileManager.default.createFile(atPath: go, contents: nil) }
    }
    if !finished { child.signal(SIGKILL) }
    let status = child.wait()
    let stdout = String(decoding: out, as: UTF8.self)
    #expect(status == .exited(0), "\(stdout)")
    #expect(stdout.contains("[waits] got go\n"))
  }

  /// The pipeline's jobs ledger under a test's data root (one pipeline per project here).
  func ledger(_ directory: String) throws -> [LedgerRecord] {
    let pipelines = "\(directory)/.data/pipelines"
    let files = try FileManager.default.contentsOfDirectory(atPath: pipelines).filter { $0.hasSuffix(".jsonl") }
    #expect(files.count == 1, "\(files)")
    return try files.flatMap { try LedgerRecord.decodeLines(FileManager.default.contents(atPath: "\(pipelines)/\($0)") ?? Data()) }
  }

  /// The summary's scheduler jobs come from the driver's ledger: a job printing the
  /// driver's "Submitted" line cannot put a job id of its own there.
  @Test func theSummaryListsTheSchedulerJobsTheLedgerHolds() throws {
    let directory = try project("""
      forger:
        script: ['echo "Submitted Slurm job 424242 (forged) for build_script: none"']
      """)
    let result = try ciLocalPlain(["--jobs", "1", "--backend", "local"], cwd: directory)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    let submitted = try ledger(directory).filter { $0.event == LedgerRecord.submitted && $0.ciJobName == "forger" }
    #expect(submitted.count == 1)
    let row = result.stdout.split(separator: "\n").first { $0.hasPrefix("forger ") }.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    #expect(!row.contains("424242"), "\(row)")
    #expect(row.hasSuffix(" \(submitted.first?.schedulerJobID ?? "?")"), "\(row)")
  }

  /// Ctrl-C stops the pipeline as the runner's abort does: the running job's script and
  /// scheduler job are gone when ci-local exits, cleanup ran, the next stage never starts.
  @Test(arguments: Backend.available)
  func anInterruptedPipelineLeavesNoJobRunning(backend: Backend) throws {
    let directory = try project("""
      stages: [build, test]
      slow:
        stage: build
        script: ['echo $$ > "$CI_SLURM_TEST_PID"', 'echo "ready: $(( 40 + 2 ))"', sleep 300]
      later:
        stage: test
        script: [echo never]
      """)
    let pidFile = "\(directory)/job.pid"
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = backend.rawValue
    env["CI_SLURM_DATA_ROOT"] = "\(directory)/.data"
    env["CI_SLURM_SETTINGS"] = Package.rootSettings
    let child = try ChildProcess(
      arguments: ["\(Package.bin)/ci-local", "--variable", "CI_SLURM_TEST_PID=\(pidFile)", "--graceful-kill-timeout", "20"],
      environment: env, workingDirectory: directory)
    var out = Data()
    var interrupted = false
    let finished = PipeDrain.drain(child, deadline: Date().addingTimeInterval(300)) { stream, data in
      guard stream == .stdout else { return }
      out.append(data)
      if !interrupted, String(decoding: out, as: UTF8.self).contains("ready: 42\n") {
        interrupted = true
        child.signal(SIGINT)
      }
    }
    if !finished { child.signal(SIGKILL) }
    let status = child.wait()
    let stdout = String(decoding: out, as: UTF8.self)
    #expect(interrupted && status == .exited(130), "\(stdout)")
    let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
    #expect(pid != nil)
    if let pid { #expect(!ProcessTable.isAlive(pid), "the job's script (pid \(pid)) outlived ci-local") }
    for record in try ledger(directory) where record.event == LedgerRecord.submitted && backend == .slurm {
      let queue = try run(["squeue", "-h", "-j", record.schedulerJobID, "-t", "PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED", "-o", "%T"], env: env, timeout: 30)
      #expect(queue.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "Slurm job \(record.schedulerJobID): \(queue.stdout)")
    }
    let rows = stdout.split(separator: "\n")
    #expect(rows.contains { $0.hasPrefix("slow ") && $0.contains("canceled") }, "\(stdout)")
    #expect(rows.contains { $0.hasPrefix("later ") && $0.contains("skipped") }, "\(stdout)")
    #expect(!rows.contains("[later] never"))
    let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/.data/jobs")) ?? []
    #expect(leftovers.isEmpty, "cleanup left \(leftovers)")
  }

  @Test func jobsFindTheBuildsCIWorkerOnPath() throws {
    let directory = try project("job:\n  script: [command -v ci-worker]\n")
    let result = try ciLocalPlain(["--jobs", "1", "--backend", "local"], cwd: directory)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    let built = URL(fileURLWithPath: "\(Package.bin)/ci-worker").resolvingSymlinksInPath().path
    #expect(result.stdout.split(separator: "\n").contains { $0 == built }, "\(result.stdout)")
  }

  @Test func emptyPipelinesAndMissingProjectsAreOneLineErrors() throws {
    let directory = try project(".hidden:\n  script: [echo never]\nvariables: {A: b}\n")
    let empty = try ciLocalPlain(["--backend", "local"], cwd: directory)
    #expect(empty.status == .exited(64))
    #expect(empty.stderr.contains("has no jobs (hidden .jobs and keywords only); add a job with a script"), "\(empty.stderr)")
    let missing = "\(directory)/no-such-project"
    let result = try ciLocalPlain([".gitlab-ci.yml", "--project", missing], cwd: directory)
    #expect(result.status == .exited(64))
    #expect(result.stderr.contains("--project \(missing) is not a directory"), "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: missing))
  }

  @Test(arguments: Backend.available)
  func aGeneratedArrayModePipelineFindsItsItemsWhereverOutputPutsIt(backend: Backend) throws {
    let repo = try project("unused: {script: [true]}\n")
    try FileManager.default.createDirectory(atPath: "\(repo)/.git", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: "\(repo)/specs", withIntermediateDirectories: true)
    // 55 items, over GitLab's 50 needs: one CI job, a Slurm array over the items (the size
    // that lost its last tasks before the array's pending rest was waited for).
    let items = (0..<55).map { "  - {id: s\($0), params: {FILE: f\($0).csv}}" }.joined(separator: "\n")
    try "pipeline: many\nitems:\n\(items)\nstages:\n  - name: work\n    script: [echo \"item $DATASET_ID file $FILE\"]\n"
      .write(toFile: "\(repo)/specs/many.yml", atomically: true, encoding: .utf8)
    let generate = try run(
      ["\(Package.bin)/ci-gen", "generate", "specs/many.yml", "-o", "ci/generated.yml"], env: ProcessInfo.processInfo.environment,
      cwd: repo)
    #expect(generate.status == .exited(0), "\(generate.stderr)")
    let result = try ciLocalPlain(["ci/generated.yml", "--project", repo, "--backend", backend.rawValue], cwd: repo)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    for index in 0..<55 { #expect(result.stdout.contains("item s\(index) file f\(index).csv"), "item s\(index)") }
  }

  @Test func badPipelinesAreOneLineErrors() throws {
    let directory = try project("a:\n  script: x\n  needs: [ghost]\n")
    let result = try ciLocal(directory, backend: .local)
    #expect(result.status != .exited(0))
    #expect(result.stderr.contains("job 'a' needs 'ghost', which is not a job of this pipeline"))
  }
}

/// ci-local plays GitLab's part for run_as: it signs each job's `id_tokens:` with a key of
/// the user's, and the driver (as root) runs the job as the account the token names.
@Suite(.tags(.large)) struct CILocalRunAsTests {
  @Test(arguments: Accounts.slurm)
  func aPipelineRunsAsTheSignedUsersAccount(backend: Backend) throws {
    let directory = NSTemporaryDirectory() + "cilocal-runas-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try """
      default:
        id_tokens:
          CI_SLURM_ID_TOKEN:
            aud: ci-local-e2e
      whoami:
        script: [id -un]
      """.write(toFile: "\(directory)/.gitlab-ci.yml", atomically: true, encoding: .utf8)
    try IDTokenMinter.generatePrivateKeyPEM().write(toFile: "\(directory)/key.pem", atomically: true, encoding: .utf8)
    try """
      [run_as]
      mode = "user"
      jwks_file = "\(directory)/jwks.json"
      issuer = "https://gitlab.ci-local"
      audience = "ci-local-e2e"
      [run_as.accounts]
      bob = "ci-bob"
      """.write(toFile: "\(directory)/settings.toml", atomically: true, encoding: .utf8)
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = backend.rawValue
    env["CI_SLURM_DATA_ROOT"] = "\(directory)/data"
    env["CI_SLURM_SETTINGS"] = "\(directory)/settings.toml"
    let result = try run(
      ["\(Package.bin)/ci-local", "--id-token-key", "\(directory)/key.pem", "--jwks-out", "\(directory)/jwks.json", "--user", "bob",
       "--jobs", "1", "\(directory)/.gitlab-ci.yml"], env: env, cwd: directory)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    #expect(result.stdout.contains("\nci-bob\n"), "\(result.stdout)")
  }
}
