import ChildProcesses
import Foundation
import TestSizes
import Testing

/// The account's shared status answer on the real Slurm (`status_tick_seconds`).
@Suite(.tags(.large)) struct StatusTickTests {
  /// SIGKILL to the batch script leaves no status file: only the shared `squeue --me`
  /// answer, one short tick later, tells the driver the job is gone.
  @Test(arguments: Backend.slurmOnly)
  func aJobKilledOutsideCIIsSeenThroughTheSharedAnswer(backend: Backend) throws {
    let job = try DriverJob(backend)
    try job.settings("status_tick_seconds = 2\npoll_seconds = 1\n")
    let child = try job.startScript("echo started\nsleep 600")
    job.waitForOutput("started")
    let id = try job.submittedJobID()
    let killed = try run(["scancel", "--full", "--signal=KILL", id], env: ProcessInfo.processInfo.environment, timeout: 30)
    #expect(killed.status == .exited(0), "scancel: \(killed.stderr)")
    let status = child.wait()
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(status != .exited(0), "\(err)")
    #expect(err.contains("Summary of Slurm job \(id): 1 tasks, 0 succeeded, 1 did not"), "\(err)")
    let files = try FileManager.default.contentsOfDirectory(atPath: "\(job.tmp)/data/status")
    let listing = try #require(files.first { $0.hasSuffix(".squeue") }, "\(files)")
    let text = try String(contentsOfFile: "\(job.tmp)/data/status/\(listing)", encoding: .utf8)
    #expect(text.hasPrefix("ci-slurm account listing 1 "), "\(text)")
    try job.cleanup()
    #expect(try job.liveSlurmJobs().isEmpty)
  }
}
