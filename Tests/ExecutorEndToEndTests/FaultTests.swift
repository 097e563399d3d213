import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Faults of the real cluster. These stop slurmctld and kill slurmd, so scripts/test runs
/// them alone (`swift test --filter SlurmFaultTests`), one after another.
@Suite(.tags(.large), .serialized) struct SlurmFaultTests {
  static let slurmLocal = "\(Package.root)/scripts/slurm-local"

  func restoreCluster() throws {
    let result = try run([Self.slurmLocal, "start"], env: ProcessInfo.processInfo.environment, timeout: 180)
    #expect(result.status == .exited(0), "slurm-local start: \(result.stderr)")
  }

  func daemonPID(_ name: String) -> Int32? {
    guard let text = try? String(contentsOfFile: "/run/\(name).pid", encoding: .utf8) else { return nil }
    return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
  }

  @Test(arguments: Backend.slurmOnly)
  func slurmctldAwayForTwentySecondsDoesNotHurtTheJob(backend: Backend) throws {
    defer { try? restoreCluster() }
    let job = try DriverJob(backend)
    try job.settings("poll_seconds = 2\n")
    let child = try job.startScript("for i in $(seq 1 40); do echo \"line $i\"; sleep 1; done")
    job.waitForOutput("line 2")
    let controller = try #require(daemonPID("slurmctld"))
    kill(controller, SIGTERM)
    Thread.sleep(forTimeInterval: 20)
    try restoreCluster()
    let status = child.wait()
    let out = try String(contentsOfFile: "\(job.tmp)/run.out", encoding: .utf8)
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(status == .exited(0), "\(err)")
    #expect(out == (1...40).map { "line \($0)\n" }.joined())
    try job.cleanup()
  }

  @Test(arguments: Backend.slurmOnly)
  func aJobCancelledOutsideCIIsASystemFailureThatSaysSo(backend: Backend) throws {
    let job = try DriverJob(backend)
    let child = try job.startScript("echo started\nsleep 300")
    job.waitForOutput("started")
    let id = try job.submittedJobID()
    _ = try run(["scancel", id], env: ProcessInfo.processInfo.environment, timeout: 30)
    let started = Date()
    let status = child.wait()
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(status == .exited(2))
    #expect(err.contains("ERROR: Slurm job \(id) was cancelled outside CI"), "\(err)")
    #expect(Date().timeIntervalSince(started) < 40)
    try job.cleanup()
  }

  @Test(arguments: Backend.slurmOnly)
  func aNodeFailureEndsTheJobAsASystemFailureInBoundedTime(backend: Backend) throws {
    defer {
      try? restoreCluster()
      _ = try? run(["scontrol", "update", "nodename=\(ProcessInfo.processInfo.hostName)", "state=resume"],
                   env: ProcessInfo.processInfo.environment, timeout: 30)
    }
    let job = try DriverJob(backend)
    try job.settings("poll_seconds = 5\n")
    let child = try job.startScript("echo started\nsleep 600")
    job.waitForOutput("started")
    // The node dies: slurmd, the job's step daemon and the job's processes, all at once.
    if let daemon = daemonPID("slurmd") { kill(daemon, SIGKILL) }
    var sessions = Set<Int32>()
    for entry in ProcessTable.all() {
      let command = (FileManager.default.contents(atPath: "/proc/\(entry.pid)/cmdline")).map { String(decoding: $0, as: UTF8.self) } ?? ""
      if command.hasPrefix("slurmstepd") { kill(entry.pid, SIGKILL) }
      if command.contains("wrapper.sh") && command.contains(job.tmp) { sessions.insert(entry.session) }
    }
    for session in sessions { ProcessTable.signalSession(session, SIGKILL) }
    let started = Date()
    let status = child.wait()
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(status == .exited(2), "\(err)")
    #expect(err.contains("its node failed"), "\(err)")
    #expect(Date().timeIntervalSince(started) < 240)
    // Slurm may still count the job as running on the dead node: nothing may stay queued.
    try restoreCluster()
    try job.cleanup()
    _ = try waitFor("squeue to show no job", seconds: 60) { try job.liveSlurmJobs().isEmpty }
  }
}
