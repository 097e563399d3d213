import ChildProcesses
import Foundation
import TestSizes
import Testing

/// The account's shared status answer on the real Slurm (`status_tick_seconds`).
@Suite(.tags(.large)) struct StatusTickTests {
  /// SIGKILL to the batch script alone leaves no status file: only the shared `squeue --me`
  /// answer, a short tick later, tells the driver the job is gone.
  @Test(arguments: Backend.slurmOnly)
  func aJobKilledOutsideCIIsSeenThroughTheSharedAnswer(backend: Backend) throws {
    let job = try DriverJob(backend)
    try job.settings("status_tick_seconds = 2\npoll_seconds = 1\n")
    let child = try job.startScript("echo started\nsleep 600")
    job.waitForOutput("started")
    let id = try job.submittedJobID()
    let status = "\(job.tmp)/data/status"
    _ = waitFor("the shared answer", seconds: 60) {
      ((try? FileManager.default.contentsOfDirectory(atPath: status)) ?? []).contains { $0.hasSuffix(".squeue") }
    }
    let killed = try run(["scancel", "--batch", "--signal=KILL", id], env: ProcessInfo.processInfo.environment, timeout: 30)
    #expect(killed.status == .exited(0), "scancel: \(killed.stderr)")
    let ended = child.wait()
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(ended != .exited(0), "\(err)")
    #expect(err.contains("Summary of Slurm job \(id): 1 tasks, 0 succeeded, 1 did not"), "\(err)")
    #expect(!FileManager.default.fileExists(atPath: "\(job.tmp)/data/jobs/\(job.jobID)/build_script-1/status"), "\(err)")
    try job.cleanup()
    #expect(try job.liveSlurmJobs().isEmpty)
  }
}
