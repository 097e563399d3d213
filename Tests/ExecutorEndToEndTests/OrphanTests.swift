import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

extension DriverJob {
  /// Puts a shell script named `command` first on PATH; `REAL` in it is the real command.
  func shim(_ command: String, _ body: String) throws {
    let directory = "\(tmp)/shim"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let real = try ChildProcess.resolve(command, path: env["PATH"])
    let text = "#!/bin/sh\n" + body.replacingOccurrences(of: "REAL", with: real) + "\n"
    try text.write(toFile: "\(directory)/\(command)", atomically: true, encoding: .utf8)
    chmod("\(directory)/\(command)", 0o755)
    if !(env["PATH"] ?? "").hasPrefix(directory) { env["PATH"] = "\(directory):\(env["PATH"] ?? "/usr/bin:/bin")" }
  }

  /// Cleanup, then squeue until the job's name is gone (a cancelled job is listed as
  /// COMPLETING for a moment).
  func cleanupLeavesNothing() throws {
    let cleanup = try phase("ci-cleanup")
    #expect(!cleanup.stderr.contains("still lists"), "\(cleanup.stderr)")
    _ = try waitFor("squeue --name=\(schedulerJobName) to be empty after cleanup", seconds: 30) { try liveSlurmJobs().isEmpty }
  }
}

/// The three ways a Slurm job outlived its CI job (issue #19), each on the real cluster.
@Suite(.tags(.large)) struct OrphanTests {
  @Test(arguments: Backend.slurmOnly)
  func aSigtermWhileSbatchAnswersLeavesNothingRunning(backend: Backend) throws {
    // sbatch has submitted but not yet answered when the runner signals ci-run's group.
    let job = try DriverJob(backend)
    try job.shim("sbatch", """
      REAL "$@" > "\(job.tmp)/sbatch.out" 2> "\(job.tmp)/sbatch.err"; rc=$?
      touch "\(job.tmp)/submitted"
      sleep 4
      cat "\(job.tmp)/sbatch.out"; cat "\(job.tmp)/sbatch.err" >&2; exit $rc
      """)
    let child = try job.startScript("echo started\nsleep 300")
    _ = waitFor("sbatch to submit", seconds: 60) { FileManager.default.fileExists(atPath: "\(job.tmp)/submitted") }
    child.signal(SIGTERM, group: true)
    #expect(child.wait() == .exited(1))
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(!err.contains("refused"), "\(err)")
    try job.cleanupLeavesNothing()
  }

  @Test(arguments: Backend.slurmOnly)
  func aFailedScancelDuringACancelIsLeftToCleanup(backend: Backend) throws {
    let job = try DriverJob(backend)
    try job.settings("cancel_wait_seconds = 3\n")
    // The first scancel fails (as a controller under load or a permission slip would).
    try job.shim("scancel", """
      if [ ! -e "\(job.tmp)/scancel-failed" ]; then
        touch "\(job.tmp)/scancel-failed"
        echo "scancel: error: Kill job error on job id $1: Access/permission denied" >&2; exit 1
      fi
      exec REAL "$@"
      """)
    let child = try job.startScript("echo started\nsleep 300")
    job.waitForOutput("started")
    child.signal(SIGTERM, group: true)
    #expect(child.wait() == .exited(1))
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(err.contains("Could not cancel job"), "\(err)")
    #expect(try !job.liveSlurmJobs().isEmpty, "the job outlives the failed cancel")
    try job.cleanupLeavesNothing()
  }

  @Test(arguments: Backend.available)
  func aJobWritingItsOwnStatusFileIsNotTakenAtItsWord(backend: Backend) throws {
    // It went green at once while its Slurm job ran on.
    let job = try DriverJob(backend)
    let status = "\(job.tmp)/data/jobs/\(job.jobID)/build_script-1/status"
    let result = try job.runScript("printf 'exit 0\\n' > '\(status)'\necho faked\nsleep 8\nexit 3")
    #expect(result.status == .exited(1), "\(result.stderr)")
    #expect(job.exitCodeFile == "3\n")
    #expect(result.stdout == "faked\n")
    if backend == .slurm { try job.cleanupLeavesNothing() } else { try job.cleanup() }
  }
}

/// Big arrays with a throttle: most tasks wait as the array's pending rest (`123_[88-98]`),
/// which is not over until Slurm has started and ended each of them. In the oversub
/// partition (the test cluster's three one-CPU nodes would run three tasks at a time), one
/// array at a time: two at once would only queue behind each other.
@Suite(.tags(.large), .serialized) struct ArrayAccountingTests {
  @Test(arguments: Backend.slurmOnly.flatMap { backend in [(backend, 100, 1), (backend, 100, 2), (backend, 1000, 1), (backend, 1000, 2)] })
  func everyTaskOfAThrottledArrayIsWaitedFor(backend: Backend, tasks: Int, round: Int) throws {
    let job = try DriverJob(backend, parameters: "--array=0-\(tasks - 1)%\(tasks / 10) -t 20 -p oversub")
    // Time for a thousand tasks' starts and ends, whatever else the cluster runs.
    job.env["CUSTOM_ENV_CI_JOB_TIMEOUT"] = "1800"
    job.payloadTimeout = 1800
    defer { try? job.cleanup() }
    let result = try job.runScript("sleep 0.$((RANDOM % 5))\necho \"task $SLURM_ARRAY_TASK_ID done\"", timeout: 1800)
    #expect(result.status == .exited(0), "round \(round): \(result.stderr.suffix(2000))")
    let missing = (0..<tasks).filter { !result.stdout.contains("[task \($0)] task \($0) done\n") }
    #expect(missing.isEmpty, "round \(round): no output from tasks \(missing.prefix(20))")
    #expect(result.stderr.contains("\(tasks) tasks, \(tasks) succeeded, 0 did not"))
  }
}
