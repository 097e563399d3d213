import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Faults of the real cluster. These stop slurmctld and kill compute nodes, so scripts/test
/// runs them alone (`swift test --filter SlurmFaultTests`), one after another.
@Suite(.tags(.large), .serialized) struct SlurmFaultTests {
  func restoreCluster() throws {
    let result = try run([Cluster.slurmLocal, "start"], env: ProcessInfo.processInfo.environment, timeout: 180)
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

  /// Powers a compute node off: slurmd, its step daemons and the jobs' processes, all at
  /// once (scripts/slurm-local kills every process in the node's namespace).
  func killNode(_ node: String) throws {
    let result = try run([Cluster.slurmLocal, "kill-node", node], env: ProcessInfo.processInfo.environment, timeout: 60)
    try #require(result.status == .exited(0), "kill-node \(node): \(result.stderr)")
  }

  /// Processes still running a script of this CI job, on any node.
  func processesOf(_ job: DriverJob) -> [Int32] {
    ProcessTable.all().compactMap { entry in
      let command = FileManager.default.contents(atPath: "/proc/\(entry.pid)/cmdline").map { String(decoding: $0, as: UTF8.self) } ?? ""
      return command.contains(job.tmp) ? entry.pid : nil
    }
  }

  @Test(arguments: Backend.slurmOnly)
  func aNodeFailureEndsTheJobAsASystemFailureInBoundedTime(backend: Backend) throws {
    defer { try? restoreCluster() }
    let job = try DriverJob(backend)
    try job.settings("poll_seconds = 5\n")
    let child = try job.startScript("echo started\nsleep 600")
    job.waitForOutput("started")
    let id = try job.submittedJobID()
    let node = try #require(try Cluster.runningTasks(of: id).values.first, "job \(id) runs on no node")
    try killNode(node)
    let started = Date()
    let status = child.wait()
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(status == .exited(2), "\(err)")
    #expect(err.contains("Slurm job \(id) did not finish: its node failed (\(node))"), "\(err)")
    #expect(Date().timeIntervalSince(started) < 240)
    // Slurm may still count the job as running on the dead node: nothing may stay queued.
    try restoreCluster()
    try job.cleanup()
    _ = try waitFor("squeue to show no job", seconds: 60) { try job.liveSlurmJobs().isEmpty }
  }

  /// One node of three dies mid-array: its task ends as NODE_FAIL and the CI job is a
  /// system failure that names the node and the task; every other task's output is
  /// complete, and nothing of the job runs anywhere afterwards.
  @Test(arguments: Cluster.multiNodeBackends)
  func aNodeKilledMidArrayFailsItsTasksNamingTheNodeAndKeepsTheOthersOutput(backend: Backend) throws {
    defer { try? restoreCluster() }
    let job = try DriverJob(backend, parameters: "--array=0-5")
    let child = try job.startScript(
      "echo \"task $SLURM_ARRAY_TASK_ID on $(hostname)\"\nsleep 20\necho \"task $SLURM_ARRAY_TASK_ID done\"")
    _ = waitFor("the array's first tasks to run", seconds: 120) { !((try? job.submittedJobIDs()) ?? []).isEmpty }
    let id = try job.submittedJobID()
    var running: [Int: String] = [:]
    _ = try waitFor("three tasks running, one a node", seconds: 120) {
      running = try Cluster.runningTasks(of: id)
      return Set(running.values).count >= 3
    }
    let (victim, node) = try #require(running.sorted { $0.key < $1.key }.dropFirst().first, "running: \(running)")
    try killNode(node)
    let status = child.wait()
    let out = try String(contentsOfFile: "\(job.tmp)/run.out", encoding: .utf8)
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    #expect(status == .exited(2), "\(err)")
    #expect(err.contains("Slurm job \(id): 1 of 6 tasks did not succeed: \(victim) (its node failed (\(node)))"), "\(err)")
    for task in 0..<6 where task != victim {
      #expect(out.contains("task \(task) on ") && out.contains("task \(task) done"), "task \(task)'s output: \(out.suffix(3000))")
    }
    #expect(!out.contains("task \(victim) done"))
    // Nothing left: no task of the job on any node, nothing queued.
    #expect(processesOf(job).isEmpty, "still running: \(processesOf(job))")
    try restoreCluster()
    try job.cleanup()
    _ = try waitFor("squeue to show no job", seconds: 60) { try job.liveSlurmJobs().isEmpty }
  }
}
