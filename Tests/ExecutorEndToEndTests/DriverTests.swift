import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The built executables driven as gitlab-runner drives them, against the real local Slurm
/// (scripts/slurm-local) and the local backend: the same test body for both.
@Suite(.tags(.large)) struct DriverTests {
  @Test("CI sees Slurm", .enabled(if: Backend.inCI))
  func slurmIsUpInCI() {
    // In CI the Slurm cases below must really run; this fails if the cluster is missing.
    #expect(Backend.slurmIsUp, "scripts/slurm-local start should have brought Slurm up")
  }

  @Test(arguments: Backend.available)
  func successStreamsTheLogAndExitsZero(backend: Backend) throws {
    // One CPU: each node of the test cluster has one.
    let job = try DriverJob(backend, parameters: "-c 1")
    defer { try? job.cleanup() }
    let result = try job.runScript("echo hello from the job\necho \"cpus=$SLURM_CPUS_PER_TASK\"")
    #expect(result.status == .exited(0), "\(result.stderr)")
    #expect(result.stdout == "hello from the job\ncpus=1\n")
    #expect(job.exitCodeFile == nil)
  }

  @Test(arguments: Backend.available)
  func scriptExitThreeIsABuildFailureWithCodeThree(backend: Backend) throws {
    let job = try DriverJob(backend)
    defer { try? job.cleanup() }
    let result = try job.runScript("echo before\nexit 3")
    #expect(result.status == .exited(1))
    #expect(job.exitCodeFile == "3\n")
    #expect(result.stdout == "before\n")
  }

  @Test(arguments: Backend.available)
  func fiveThousandMultibyteLinesArriveWholeAndInOrder(backend: Backend) throws {
    let job = try DriverJob(backend)
    defer { try? job.cleanup() }
    let result = try job.runScript(#"for i in $(seq 1 5000); do echo "line $i ünïcødé ✓ 漢字"; done; printf 'the end ✓'"#)
    #expect(result.status == .exited(0), "\(result.stderr)")
    var expected = ""
    for i in 1...5000 { expected += "line \(i) ünïcødé ✓ 漢字\n" }
    expected += "the end ✓"
    #expect(result.stdout == expected)
  }

  @Test(arguments: Backend.slurmOnly)
  func schedulerParametersAreHonouredInsideTheJob(backend: Backend) throws {
    let job = try DriverJob(backend, parameters: "-c 1 --mem 256M -t 7 --nodes=2 --ntasks=2")
    defer { try? job.cleanup() }
    let result = try job.runScript(
      "echo cpus=$SLURM_CPUS_PER_TASK tasks=$SLURM_NTASKS nodes=$SLURM_JOB_NUM_NODES\nscontrol show job \"$SLURM_JOB_ID\" | grep -o 'TimeLimit=[^ ]*'\necho name=$SLURM_JOB_NAME")
    #expect(result.status == .exited(0), "\(result.stderr)")
    #expect(result.stdout == "cpus=1 tasks=2 nodes=2\nTimeLimit=00:07:00\nname=\(job.schedulerJobName)\n")
  }

  @Test(arguments: Backend.slurmOnly)
  func aPendingJobGetsHeartbeatsWithSlurmsReason(backend: Backend) throws {
    let job = try DriverJob(backend, parameters: "--begin=now+8")
    try job.settings("heartbeat_seconds = 2\n")
    defer { try? job.cleanup() }
    let result = try job.runScript("echo finally")
    #expect(result.status == .exited(0))
    #expect(result.stdout == "finally\n")
    #expect(result.stderr.contains("is waiting in the queue (BeginTime)"), "\(result.stderr)")
  }

  @Test(arguments: ["-c 1; touch MARKER", "$(touch MARKER)", "`touch MARKER`", "-c 1 && touch MARKER", "-J \"$(touch MARKER)\""])
  func injectionStringsNeverExecute(template: String) throws {
    let job = try DriverJob(.local)
    let marker = "\(job.tmp)/injected"
    job.env["CUSTOM_ENV_SCHEDULER_PARAMETERS"] = template.replacingOccurrences(of: "MARKER", with: marker)
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(1))
    #expect(prepare.stderr.split(separator: "\n").count == 1, "one line: \(prepare.stderr)")
    #expect(prepare.stderr.hasPrefix("SCHEDULER_PARAMETERS: "))
    let run = try job.phase("ci-run", [try job.script("echo ran"), "build_script"])
    #expect(run.status == .exited(1))
    #expect(!run.stdout.contains("ran"))
    #expect(!FileManager.default.fileExists(atPath: marker))
  }

  @Test func aDeniedOptionGetsOneClearLine() throws {
    let job = try DriverJob(.local, parameters: "-c 2 --output=/tmp/elsewhere.log")
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(1))
    #expect(prepare.stderr == "SCHEDULER_PARAMETERS: --output (-o) is not allowed: the driver owns the job's output files (it streams them into the CI log)\n")
  }

  @Test(arguments: Backend.available)
  func sigtermCancelsTheJobAndLeavesNothingRunning(backend: Backend) throws {
    let job = try DriverJob(backend)
    let child = try job.startScript("echo started\nsleep 120\necho never")
    let outPath = "\(job.tmp)/run.out"
    job.waitForOutput("started")
    child.signal(SIGTERM, group: true)  // the runner signals the whole process group
    let status = child.wait()
    #expect(status == .exited(1))
    let out = try String(contentsOfFile: outPath, encoding: .utf8)
    // What follows "started" is the job's own dying words (bash's "Terminated", slurmstepd).
    #expect(out.hasPrefix("started\n"))
    #expect(!out.contains("never"))
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(err.contains("Cancelling"))
    if backend == .slurm {
      _ = try waitFor("squeue to show no job", seconds: 30) { try job.liveSlurmJobs().isEmpty }
    } else {
      _ = waitFor("no sleep left", seconds: 10) { !processExists(commandContaining: job.tmp) }
    }
    try job.cleanup()
  }

  @Test(arguments: Backend.slurmOnly)
  func sigkillLeavesAnOrphanThatCleanupCancels(backend: Backend) throws {
    let job = try DriverJob(backend)
    let child = try job.startScript("echo started\nsleep 300")
    job.waitForOutput("started")
    child.signal(SIGKILL, group: true)
    child.wait()
    #expect(try !job.liveSlurmJobs().isEmpty, "the job outlives a killed ci-run")
    try job.cleanup()
    _ = try waitFor("cleanup to cancel the orphan", seconds: 30) { try job.liveSlurmJobs().isEmpty }
    #expect(!FileManager.default.fileExists(atPath: "\(job.tmp)/data/jobs/\(job.jobID)"))
  }

  @Test(arguments: Backend.available)
  func overTheTimeLimitIsReportedAsSuch(backend: Backend) throws {
    // Slurm counts whole minutes and checks limits every 30 s: this one takes 1-2 minutes.
    let job = try DriverJob(backend, parameters: backend == .slurm ? "-t 1" : "-t 0:03")
    defer { try? job.cleanup() }
    let result = try job.runScript("echo working\nsleep 300")
    #expect(result.status == .exited(1))
    #expect(job.exitCodeFile == "124\n")
    let limit = backend == .slurm ? "00:01:00" : "00:00:03"
    #expect(result.stderr.contains("job \(try job.submittedJobID()) hit its time limit of \(limit)"), "\(result.stderr)")
    #expect(result.stdout.hasPrefix("working\n"))
  }

  @Test(arguments: Backend.available)
  func anArrayWithOneFailingTaskFailsAndNamesIt(backend: Backend) throws {
    let job = try DriverJob(backend, parameters: "--array=0-3%2")
    defer { try? job.cleanup() }
    let result = try job.runScript("echo \"hello from $SLURM_ARRAY_TASK_ID\"\nif [ \"$SLURM_ARRAY_TASK_ID\" = 2 ]; then exit 5; fi")
    #expect(result.status == .exited(1))
    // Partly failed: the partial-array code, 75 by default (a wholly failed array keeps its task's).
    #expect(job.exitCodeFile == "75\n")
    for task in 0...3 { #expect(result.stdout.contains("[task \(task)] hello from \(task)\n")) }
    // Task 2's section is open, the others folded; each holds its own line.
    #expect(result.stdout.contains("_task_2\r\u{1b}[0K\(backend.schedulerName): task 2 (exit 5)\n[task 2] hello from 2\n"), "\(result.stdout)")
    #expect(result.stdout.contains("_task_0[collapsed=true]\r\u{1b}[0K\(backend.schedulerName): task 0 (exit 0)\n[task 0] hello from 0\n"))
    #expect(result.stderr.contains("1 of 4 tasks failed: 2 (exit 5) (partly failed: exit 75)"), "\(result.stderr)")
    #expect(result.stderr.contains("task 2: FAILED, exit 5, elapsed "))
  }

  @Test func configPrintsOneJSONObjectOnly() throws {
    let job = try DriverJob(.local)
    let config = try job.phase("ci-config")
    #expect(config.status == .exited(0))
    let object = try JSONSerialization.jsonObject(with: Data(config.stdout.utf8)) as? [String: Any]
    #expect(object?["builds_dir"] as? String == "\(job.tmp)/data/builds/\(job.jobID)")
    #expect(object?["cache_dir"] as? String == "\(job.tmp)/data/cache")
    #expect(object?["shell"] as? String == "bash")
    #expect(config.stdout.split(separator: "\n").count == 1)
  }

  @Test(arguments: Backend.available)
  func secretsStayOutOfTheBatchScriptAndAreRemovedByCleanup(backend: Backend) throws {
    let job = try DriverJob(backend)
    let result = try job.runScript("echo ok")
    #expect(result.status == .exited(0))
    let jobDirectory = "\(job.tmp)/data/jobs/\(job.jobID)"
    let stage = "\(jobDirectory)/build_script-1"
    let wrapper = try String(contentsOfFile: "\(stage)/wrapper.sh", encoding: .utf8)
    #expect(!wrapper.contains("SECRET"))
    let attributes = try FileManager.default.attributesOfItem(atPath: jobDirectory)
    #expect((attributes[.posixPermissions] as? Int) == 0o700)
    try job.cleanup()
    #expect(!FileManager.default.fileExists(atPath: jobDirectory))
  }
}

/// Error paths with fake Slurm commands first on PATH.
@Suite(.tags(.large)) struct FailureClassificationTests {
  @Test func aRefusedPartitionIsTheUsersBuildFailureWithSlurmsReason() throws {
    let job = try DriverJob(.slurm, parameters: "-p nosuch", fakeSlurm: true)
    let run = try job.phase("ci-run", [try job.script("echo hi"), "build_script"])
    #expect(run.status == .exited(1))
    #expect(job.exitCodeFile == "1\n")
    #expect(run.stderr == "Slurm refused the job: Invalid partition name specified (invalid partition specified: nosuch)\n")
  }

  @Test func aBogusBackendIsRefusedInOneLine() throws {
    let job = try DriverJob(.local)
    job.env["CI_SLURM_BACKEND"] = "bogus"
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(2))
    #expect(prepare.stderr == "ERROR: CI_SLURM_BACKEND is 'bogus'; use one of auto, slurm, local\n")
  }

  @Test func aDataRootUnderAPlainFileIsOneLineWithThePath() throws {
    // Was: ... Error Domain=NSCocoaErrorDomain Code=512 "(null)" UserInfo={...}
    let job = try DriverJob(.local)
    try "x".write(toFile: "\(job.tmp)/plain", atomically: true, encoding: .utf8)
    job.env["CI_SLURM_DATA_ROOT"] = "\(job.tmp)/plain/data"
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(2))
    #expect(prepare.stderr == "ERROR: cannot create the job's directories under \(job.tmp)/plain/data: \(job.tmp)/plain/data: Not a directory\n")
  }

  @Test func anArrayIndexPastIntIsOneLineNotACrash() throws {
    // It trapped on arithmetic overflow (exit 132).
    let job = try DriverJob(.local, parameters: "--array=0,0-9223372036854775807")
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(1))
    #expect(prepare.stderr.split(separator: "\n").count == 1, "\(prepare.stderr)")
    #expect(prepare.stderr.contains("is over Slurm's largest array index (4000000)"), "\(prepare.stderr)")
  }

  @Test func slurmDownAtPrepareIsASystemFailure() throws {
    let job = try DriverJob(.slurm, fakeSlurm: true, fakeModes: ["FAKE_SCONTROL": "down"])
    let prepare = try job.phase("ci-prepare", timeout: 60)
    #expect(prepare.status == .exited(2))
    #expect(prepare.stderr.contains("Slurm is not available: Slurmctld(primary) at fake is DOWN"))
  }

  @Test func garbageFromSbatchIsASystemFailure() throws {
    let job = try DriverJob(.slurm, fakeSlurm: true, fakeModes: ["FAKE_SBATCH": "garbage"])
    let run = try job.phase("ci-run", [try job.script("echo hi"), "build_script"])
    #expect(run.status == .exited(2))
    #expect(run.stderr.contains("sbatch printed no job id"))
  }

  @Test func aMissingJobIDIsASystemFailure() throws {
    let job = try DriverJob(.local)
    job.env["CUSTOM_ENV_CI_JOB_ID"] = nil
    job.env["JOB_RESPONSE_FILE"] = nil  // a phase run by hand: no payload either
    let config = try job.phase("ci-config")
    #expect(config.status == .exited(2))
    #expect(config.stdout.isEmpty)
    #expect(config.stderr.contains("CUSTOM_ENV_CI_JOB_ID is not set"))
  }

  @Test func anUnwritableExitCodeFileIsASystemFailure() throws {
    let job = try DriverJob(.local)
    job.env["BUILD_EXIT_CODE_FILE"] = "/nonexistent-dir/build_exit_code"
    let run = try job.runScript("exit 4")
    #expect(run.status == .exited(2))
    #expect(run.stderr.contains("cannot write the exit code"))
  }

  @Test func anUnreadableScriptIsASystemFailure() throws {
    let job = try DriverJob(.local)
    let run = try job.phase("ci-run", ["\(job.tmp)/no-such-script", "build_script"])
    #expect(run.status == .exited(2))
    #expect(run.stderr.contains("cannot read the stage script"))
  }

  @Test func badArgumentsAreASystemFailureNotExit64() throws {
    let job = try DriverJob(.local)
    let run = try job.phase("ci-run", ["--no-such-flag"])
    #expect(run.status == .exited(2))
  }

  @Test func aBadSettingsFileNamesTheKey() throws {
    let job = try DriverJob(.local)
    let settings = "\(job.tmp)/settings.toml"
    try job.settings("poll_seconds = 5\nheartbeat = 3\n", allowRoot: false)
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(2))
    #expect(prepare.stderr == "ERROR: settings: \(settings):2: unknown setting 'heartbeat'; did you mean 'heartbeat_seconds'?\n")
  }

  @Test func localStagesRunHereAndFailWithTheirCode() throws {
    let job = try DriverJob(.slurm, fakeSlurm: true)
    let run = try job.phase("ci-run", [try job.script("echo fetching; exit 6"), "get_sources"])
    #expect(run.status == .exited(1))
    #expect(run.stdout == "fetching\n")
    #expect(job.exitCodeFile == "6\n")
  }

  @Test func cleanupWithNothingToCleanSucceeds() throws {
    let job = try DriverJob(.slurm, fakeSlurm: true)
    let cleanup = try job.phase("ci-cleanup")
    #expect(cleanup.status == .exited(0))
  }
}

func processExists(commandContaining text: String) -> Bool {
  guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
  for name in names where Int(name) != nil {
    if let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
      String(decoding: data, as: UTF8.self).contains(text),
      ProcessTable.isAlive(Int32(name)!)
    {
      return true
    }
  }
  return false
}
