import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A site's submit limits, on scripts/slurm-local's cluster (AccountingStorageEnforce with
/// `limits`; QOS ci-limit1 allows one job per user, and only this test uses it).
@Suite(.tags(.large)) struct QueueLimitTests {
  @Test(arguments: Backend.slurmOnly)
  func aFullQueueIsWaitedOutThenTheJobRuns(backend: Backend) throws {
    let qos = try run(["sacctmgr", "-n", "-P", "show", "qos", "where", "name=ci-limit1", "format=Name,MaxSubmitPU"], env: ProcessInfo.processInfo.environment, timeout: 30)
    try #require(qos.stdout == "ci-limit1|1\n", "scripts/slurm-local start creates QOS ci-limit1 (MaxSubmitJobsPerUser=1)")
    // The blocker fills the user's one place in the QOS.
    let blockerName = "ci-limit-blocker-\(UUID().uuidString.prefix(8))"
    let blocker = try run(
      ["sbatch", "--parsable", "--qos=ci-limit1", "-J", blockerName, "-o", "/dev/null", "--wrap", "sleep 300"],
      env: ProcessInfo.processInfo.environment, timeout: 60)
    try #require(blocker.status == .exited(0), "\(blocker.stderr)")
    defer { _ = try? run(["scancel", "--name=\(blockerName)"], env: ProcessInfo.processInfo.environment, timeout: 60) }

    let job = try DriverJob(backend, parameters: "--qos=ci-limit1")
    let child = try job.startScript("echo ran")
    let wait = "queue full for this user (QOS ci-limit1: 1 job), retrying in "
    _ = waitFor("the wait line", seconds: 60) {
      ((try? String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)) ?? "").contains(wait)
    }
    _ = try run(["scancel", "--name=\(blockerName)"], env: ProcessInfo.processInfo.environment, timeout: 60)
    #expect(child.wait() == .exited(0))
    let err = try String(contentsOfFile: "\(job.tmp)/run.err", encoding: .utf8)
    let out = try String(contentsOfFile: "\(job.tmp)/run.out", encoding: .utf8)
    #expect(out == "ran\n")
    // Waited (one line per wait), then submitted.
    let lines = err.split(separator: "\n")
    let waits = lines.firstIndex { $0.hasPrefix(wait) }
    let submitted = lines.firstIndex { $0.hasPrefix("Submitted Slurm job ") }
    #expect(waits != nil && submitted != nil && waits! < submitted!, "\(err)")
    try job.cleanupLeavesNothing()
  }
}

/// scripts/slurm-local on a machine whose Slurm someone else configured.
@Suite(.tags(.large)) struct SlurmLocalTests {
  @Test(.enabled(if: getuid() == 0))
  func aForeignSlurmConfigurationIsNeverTouched() throws {
    let directory = NSTemporaryDirectory() + "slurm-conf-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let site = "ClusterName=site\nSlurmctldHost=head\n"
    try site.write(toFile: "\(directory)/slurm.conf", atomically: true, encoding: .utf8)
    var env = ProcessInfo.processInfo.environment
    env["SLURM_LOCAL_CONF_DIR"] = directory
    let result = try run(["\(Package.root)/scripts/slurm-local", "start"], env: env, timeout: 60)
    #expect(result.status == .exited(1))
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    #expect(result.stderr.contains("\(directory)/slurm.conf was not written by scripts/slurm-local"), "\(result.stderr)")
    #expect(try String(contentsOfFile: "\(directory)/slurm.conf", encoding: .utf8) == site)
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["slurm.conf"])
  }
}
