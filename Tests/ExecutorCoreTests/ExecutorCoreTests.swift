import CustomExecutorAPI
import ExecutorCore
import Foundation
import Scheduling
import TestSizes
import Testing

@Suite(.tags(.small)) struct SettingsTests {
  @Test func everyKeyIsRead() throws {
    let text = """
      # admin settings
      backend = "slurm"
      data_root = "/shared/ci"   # on the parallel file system
      after_script = "scheduler"
      default_parameters = "-p debug -A proj"
      heartbeat_seconds = 15
      poll_seconds = 2.5
      status_tick_seconds = 60
      output_poll_ms = 50
      cancel_wait_seconds = 5
      drain_margin_seconds = 90
      keep_job_dirs = true
      keep_builds = true
      """
    let settings = try DriverSettings.parse(text, origin: "s.toml", defaultDataRoot: "/home/u/.ci-slurm")
    #expect(settings.backend == .slurm)
    #expect(settings.dataRoot == "/shared/ci")
    #expect(settings.afterScript == .scheduler)
    #expect(settings.defaultParameters == "-p debug -A proj")
    #expect(settings.heartbeatSeconds == 15)
    #expect(settings.pollSeconds == 2.5)
    #expect(settings.statusTickSeconds == 60)
    #expect(settings.outputPollMilliseconds == 50)
    #expect(settings.drainMarginSeconds == 90)
    #expect(settings.keepJobDirectories && settings.keepBuilds)
  }

  @Test func defaultsWithoutAFile() throws {
    let settings = try DriverSettings.parse("", origin: "s.toml", defaultDataRoot: "/root/.ci-slurm")
    #expect(settings == DriverSettings(dataRoot: "/root/.ci-slurm"))
    #expect(settings.afterScript == .local)
  }

  @Test(arguments: [
    ("pol_seconds = 3", "s.toml:1: unknown setting 'pol_seconds'; did you mean 'poll_seconds'?"),
    ("backend = \"pbs\"", "s.toml:1: 'backend' must be one of \"auto\", \"slurm\", \"local\", not \"pbs\""),
    ("\npoll_seconds = \"3\"", "s.toml:2: 'poll_seconds' must be a number, not a string"),
    ("data_root = \"relative\"", "s.toml:1: 'data_root' must be an absolute path"),
    ("keep_builds = yes", "s.toml:1: 'yes' is not a value (quote strings: \"...\")"),
    ("backend = \"slurm", "s.toml:1: unterminated string"),
    ("[caps\n", "s.toml:1: expected ] after the table name"),
    ("poll_seconds = 3\npoll_seconds = 4", "s.toml:2: 'poll_seconds' is set twice"),
    ("poll_seconds = 0", "s.toml:1: 'poll_seconds' must be between 0.5 and 3600.0"),
    ("status_tick_seconds = 0.5", "s.toml:1: 'status_tick_seconds' must be 0 (off) or at least 1"),
    ("status_tick_seconds = -1", "s.toml:1: 'status_tick_seconds' must be between 0.0 and 3600.0"),
  ])
  func badSettingsNameTheLineAndKey(text: String, message: String) {
    #expect(throws: DriverSettings.Error(message: message)) {
      try DriverSettings.parse(text, origin: "s.toml", defaultDataRoot: "/x")
    }
  }
}

@Suite(.tags(.small)) struct TaskOutcomeTests {
  @Test func statusFileWinsWhenTheScriptEndedByItself() {
    #expect(TaskOutcome.classify(status: .exited(0), end: nil) == .succeeded)
    #expect(TaskOutcome.classify(status: .exited(3), end: TaskEnd(kind: .timeout)) == .failed(exitCode: 3))
  }

  @Test func terminatedTasksAreExplainedBySlurm() {
    #expect(TaskOutcome.classify(status: .terminated(143), end: TaskEnd(kind: .timeout, timeLimit: "00:01:00")) == .timedOut(limit: "00:01:00"))
    #expect(TaskOutcome.classify(status: nil, end: TaskEnd(kind: .nodeFailure, nodes: "n3")) == .infrastructure("its node failed (n3)"))
    #expect(TaskOutcome.classify(status: nil, end: TaskEnd(kind: .cancelled(by: "1000"))) == .cancelledOutside(by: "1000"))
    #expect(TaskOutcome.classify(status: nil, end: nil).isSystemFailure)
  }

  @Test func verdicts() {
    let id = JobID("123")
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .succeeded], isArray: false) == nil)
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .failed(exitCode: 3)], isArray: false) == .build(exitCode: 3, message: nil))
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .timedOut(limit: "00:10:00")], isArray: false)
      == .build(exitCode: 124, message: "Slurm job 123 hit its time limit of 00:10:00"))
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .cancelledOutside(by: "0")], isArray: false)
      == .system("Slurm job 123 was cancelled outside CI (by uid 0)"))
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .succeeded, 1: .failed(exitCode: 4), 2: .succeeded, 3: .failed(exitCode: 9)], isArray: true)
      == .build(exitCode: 4, message: "Slurm job 123: 2 of 4 tasks failed: 1 (exit 4), 3 (exit 9)"))
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .failed(exitCode: 4), 1: .infrastructure("its node failed")], isArray: true)
      == .system("Slurm job 123: 2 of 2 tasks did not succeed: 0 (exit 4), 1 (its node failed)"))
  }
}

@Suite(.tags(.medium)) struct OutputFollowerTests {
  /// The attack of a job on its own driver: its output, status and state files replaced by
  /// FIFOs, which the old reads opened blocking, so ci-run hung until the runner killed it
  /// and the verdict was lost. (On the old code this test hangs: no time limit here, as
  /// swift-testing's counts while a busy cooperative pool has not yet run the body.)
  @Test func aFIFOInPlaceOfAJobsFilesIsReadAsNoFileWithoutBlocking() throws {
    let path = NSTemporaryDirectory() + "fifo-" + UUID().uuidString
    #expect(mkfifo(path, 0o600) == 0)
    defer { unlink(path) }
    #expect(OutputFollower(path: path).readNew().isEmpty)
    #expect(OutputFollower(path: path).size() == 0)
    #expect(OutputFollower.tail(of: path, bytes: 100).isEmpty)
    #expect(JobState.load(path).submissions.isEmpty)
  }

  @Test func readsOnlyNewBytesAndKeepsSplitCharactersWhole() throws {
    let path = NSTemporaryDirectory() + "follow-" + UUID().uuidString
    let follower = OutputFollower(path: path)
    #expect(follower.readNew().isEmpty)  // no file yet
    FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try #require(FileHandle(forWritingAtPath: path))
    let text = Array("héllo wörld ✓".utf8)
    var received = Data()
    // Write one byte at a time, splitting every multibyte character across reads.
    for byte in text {
      handle.write(Data([byte]))
      received.append(follower.readNew())
    }
    #expect(String(decoding: received, as: UTF8.self) == "héllo wörld ✓")
    #expect(follower.readNew().isEmpty)
    #expect(follower.bytesRead == text.count)
  }

  @Test func prefixerHoldsPartialLinesUntilTheirNewline() {
    var prefixer = LinePrefixer(task: 3)
    #expect(prefixer.feed(Data("par".utf8)).isEmpty)
    #expect(String(decoding: prefixer.feed(Data("tial\nnext".utf8)), as: UTF8.self) == "[task 3] partial\n")
    #expect(String(decoding: prefixer.finish(), as: UTF8.self) == "[task 3] next\n")
    #expect(prefixer.finish().isEmpty)
  }

  @Test func aLongLineIsPassedOnInMarkedPiecesWithBoundedMemory() {
    var prefixer = LinePrefixer(task: 3)
    var out = Data()
    // 200 KiB without a newline, fed in odd-sized chunks, then its newline.
    let line = Data(repeating: UInt8(ascii: "x"), count: 200 << 10)
    for start in stride(from: 0, to: line.count, by: 7000) {
      out.append(prefixer.feed(line[start..<min(line.count, start + 7000)]))
    }
    out.append(prefixer.feed(Data("\nnext\n".utf8)))
    let lines = String(decoding: out, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == 6)  // 4 pieces of the long line, "next", and the empty tail
    #expect(lines[0] == "[task 3] " + String(repeating: "x", count: LinePrefixer.maxLine))
    #expect(lines[1].hasPrefix("[task 3+] x") && lines[2].hasPrefix("[task 3+] x") && lines[3].hasPrefix("[task 3+] x"))
    #expect(lines[0].count - "[task 3] ".count + lines[1...3].map { $0.count - "[task 3+] ".count }.reduce(0, +) == line.count)
    #expect(lines[4] == "[task 3] next")
  }

  @Test func aPieceNeverSplitsAUTF8Character() {
    var prefixer = LinePrefixer(task: 0)
    let text = String(repeating: "a", count: LinePrefixer.maxLine - 1) + "✓✓"
    let out = prefixer.feed(Data(text.utf8)) + prefixer.finish()
    let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
    #expect(lines.count == 2)
    #expect(lines[0] == "[task 0] " + String(repeating: "a", count: LinePrefixer.maxLine - 1))
    #expect(lines[1] == "[task 0+] ✓✓")
  }

  @Test func theFollowerHandsOnChunksUntilTheEnd() throws {
    let path = NSTemporaryDirectory() + "follow-" + UUID().uuidString
    let size = 5 * OutputFollower.chunkSize + 123
    FileManager.default.createFile(atPath: path, contents: Data(repeating: 65, count: size))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let follower = OutputFollower(path: path)
    var total = 0
    while case let chunk = follower.readNew(), !chunk.isEmpty {
      #expect(chunk.count <= OutputFollower.chunkSize)
      total += chunk.count
    }
    #expect(total == size)
  }
}

@Suite(.tags(.medium)) struct JobContextTests {
  func context(_ values: [String: String]) throws -> JobContext {
    let environment = RunnerEnvironment(values)
    let settings = DriverSettings(dataRoot: "/data")
    return JobContext(environment: environment, settings: settings, trusted: try TrustedJob.resolve(environment: environment, settings: settings))
  }

  func payloadFile(_ json: String) throws -> String {
    let path = NSTemporaryDirectory() + "response-" + UUID().uuidString + ".json"
    try Data(json.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test func namesAndDirectoriesComeFromTheJob() throws {
    let job = try context(["CUSTOM_ENV_CI_JOB_ID": "42", "CUSTOM_ENV_CI_PROJECT_PATH_SLUG": "group-my proj;rm"])
    #expect(job.schedulerJobName == "ci-group-my-proj-rm-42")
    #expect(job.jobDirectory == "/data/jobs/42")
    #expect(job.buildsDirectory == "/data/builds/42")
  }

  @Test func aMissingOrOddJobIDIsASystemFailure() {
    #expect(throws: DriverFailure.self) { try context([:]) }
    #expect(throws: DriverFailure.system("CUSTOM_ENV_CI_JOB_ID is '../../etc', not a job number")) {
      try context(["CUSTOM_ENV_CI_JOB_ID": "../../etc"])
    }
  }

  @Test func theJobPayloadsIDIsTrustedOverTheVariable() throws {
    let path = try payloadFile("{\"id\": 777}\n")
    let job = try context(["CUSTOM_ENV_CI_JOB_ID": "1", "JOB_RESPONSE_FILE": path])
    #expect(job.jobID == "777")
  }

  @Test func timeComesFromThePayloadsTimeoutNeverFromAVariable() throws {
    let path = try payloadFile(#"{"id": 5, "runner_info": {"timeout": 3601}}"#)
    let given = try RunPhase.request(for: context(["JOB_RESPONSE_FILE": path, "CUSTOM_ENV_CI_JOB_TIMEOUT": "60", "CUSTOM_ENV_SCHEDULER_PARAMETERS": "-c 2"]))
    #expect(given.arguments == ["--cpus-per-task=2", "--time=61"])
    let own = try RunPhase.request(for: context(["JOB_RESPONSE_FILE": path, "CUSTOM_ENV_SCHEDULER_PARAMETERS": "-t 5"]))
    #expect(own.arguments == ["--time=5"])
    // A job variable is the user's to set: without a payload timeout it is ignored.
    let variable = try RunPhase.request(for: context(["CUSTOM_ENV_CI_JOB_ID": "1", "CUSTOM_ENV_CI_JOB_TIMEOUT": "none"]))
    #expect(variable.arguments == [])
  }

  @Test func jobEnvironmentCarriesNoCIVariables() {
    let env = RunPhase.jobEnvironment(from: RunnerEnvironment([
      "PATH": "/bin", "HOME": "/h", "CUSTOM_ENV_SECRET": "s3cret", "JOB_RESPONSE_FILE": "/tmp/r", "LC_ALL": "C", "RUNNER_TOKEN": "t",
    ]))
    #expect(env == ["PATH": "/bin", "HOME": "/h", "LC_ALL": "C"])
  }
}

@Suite(.tags(.small)) struct ConfigOutputTests {
  @Test func configJSONHasTheRunnersKeys() throws {
    let context = JobContext(environment: RunnerEnvironment([:]), settings: DriverSettings(dataRoot: "/d"), trusted: TrustedJob(jobID: "9"))
    let json = try ConfigPhase(context: context, hostname: "login1").output().encoded()
    #expect(json == #"{"builds_dir":"/d/builds/9","builds_dir_is_shared":false,"cache_dir":"/d/cache","driver":{"name":"ci-slurm","version":"0.1.0"},"hostname":"login1","job_env":{"CI_SLURM_JOB_DIR":"/d/jobs/9"},"shell":"bash"}"#)
  }

  /// ci-local reads the CI job's scheduler jobs from the ledger the driver names here.
  @Test func jobEnvNamesThePipelinesLedger() {
    let environment = RunnerEnvironment(["CUSTOM_ENV_CI_PIPELINE_ID": "77"])
    let context = JobContext(environment: environment, settings: DriverSettings(dataRoot: "/d"), trusted: TrustedJob(jobID: "9"))
    let jobEnv = ConfigPhase(context: context, hostname: "login1").output().jobEnv
    #expect(jobEnv == [DriverVariable.jobDirectory: "/d/jobs/9", DriverVariable.jobsLedger: "/d/pipelines/77.jsonl"])
  }

  @Test func stageNames() {
    #expect(RunStage("step_script") == .buildScript)
    #expect(RunStage("build_script").isUserScript)
    #expect(RunStage("step_release") == .step("release"))
    #expect(!RunStage("get_sources").isUserScript)
    #expect(RunStage("something_new") == .unknown("something_new"))
  }
}
