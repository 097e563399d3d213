import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The cluster the Slurm tests run on, as a test sees it: its compute nodes (scripts/
/// slurm-local's each run a slurmd in its own network namespace) and this host, the
/// runner's, which is not one of them.
enum Cluster {
  static let slurmLocal = "\(Package.root)/scripts/slurm-local"

  /// The address compute nodes reach this host at (a node's loopback is its own), for
  /// servers that jobs on the nodes fetch from; the loopback without a route.
  static let hostAddress: String = {
    guard let result = try? run([slurmLocal, "address"], env: ProcessInfo.processInfo.environment, timeout: 10),
      result.status == .exited(0)
    else { return "127.0.0.1" }
    let address = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    return address.isEmpty ? "127.0.0.1" : address
  }()

  /// This host's short name, the one a compute node of this host would carry.
  static let runnerHost = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""

  /// The compute nodes, by name, as sinfo lists them.
  static func nodes() throws -> [String] {
    let result = try run(["sinfo", "-h", "-N", "-o", "%N"], env: ProcessInfo.processInfo.environment, timeout: 30)
    return Set(result.stdout.split(separator: "\n").map(String.init)).sorted()
  }

  /// The running tasks of a Slurm job: array task id (0 for a plain job) to its node.
  static func runningTasks(of jobID: String) throws -> [Int: String] {
    let result = try run(["squeue", "-h", "-j", jobID, "-t", "R", "-o", "%K %N"], env: ProcessInfo.processInfo.environment, timeout: 30)
    var tasks: [Int: String] = [:]
    for line in result.stdout.split(separator: "\n") {
      let words = line.split(separator: " ")
      guard words.count == 2 else { continue }
      tasks[Int(words[0]) ?? 0] = String(words[1])
    }
    return tasks
  }

  /// The multi-node tests' backends: Slurm in CI (where a cluster of one node fails
  /// them) or wherever a cluster of more than one node answers.
  static var multiNodeBackends: [Backend] {
    if Backend.inCI { return [.slurm] }
    guard Backend.slurmIsUp, let nodes = try? nodes(), nodes.count > 1 else { return [] }
    return [.slurm]
  }
}

/// Jobs across the nodes of the multi-node cluster. scripts/test runs these alone
/// (`swift test --filter MultiNodeClusterTests`), so the nodes are free and where a task
/// lands is Slurm's choice among all of them, not whatever other tests left idle.
@Suite(.tags(.large), .serialized) struct MultiNodeClusterTests {
  /// "task N on HOST" lines from the CI job's log (each line of an array task's section
  /// after its "[task N] "): task id to host.
  static func taskHosts(in log: String) -> [Int: String] {
    var hosts: [Int: String] = [:]
    for line in log.split(separator: "\n") {
      let words = Array(line.split(separator: " ").drop { $0.hasPrefix("[") || $0.hasSuffix("]") })
      guard words.count == 4, words[0] == "task", words[2] == "on", let task = Int(words[1]) else { continue }
      hosts[task] = String(words[3])
    }
    return hosts
  }

  @Test(arguments: Cluster.multiNodeBackends)
  func theNodesAreNotTheRunnerHostAndEachHasItsOwnNameAndAddress(backend: Backend) throws {
    let nodes = try Cluster.nodes()
    try #require(nodes.count >= 2, "a multi-node cluster (scripts/slurm-local start --nodes 3): sinfo lists \(nodes)")
    #expect(!nodes.contains(Cluster.runnerHost), "the runner host \(Cluster.runnerHost) is a compute node: \(nodes)")
    let job = try DriverJob(backend, parameters: "--nodes=1")
    let result = try job.runScript("echo \"on $(hostname) at $(hostname -I | tr -d ' ')\"")
    #expect(result.status == .exited(0), "\(result.stderr)")
    let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("on ") }, "\(result.stdout)")
    let words = line.split(separator: " ").map(String.init)
    #expect(nodes.contains(words[1]), "the job ran on \(words[1]), not one of \(nodes)")
    #expect(words[1] != Cluster.runnerHost)
    #expect(words[3] != Cluster.hostAddress, "the node has the runner host's address \(words[3])")
    try job.cleanup()
  }

  @Test(arguments: Cluster.multiNodeBackends)
  func aTwelveTaskArraySpreadsOverTheNodes(backend: Backend) throws {
    let nodes = try Cluster.nodes()
    let job = try DriverJob(backend, parameters: "--array=0-11")
    let result = try job.runScript("sleep 2\necho \"task $SLURM_ARRAY_TASK_ID on $(hostname)\"")
    #expect(result.status == .exited(0), "\(result.stderr)")
    let hosts = Self.taskHosts(in: result.stdout)
    #expect(hosts.keys.sorted() == Array(0...11), "\(result.stdout.suffix(3000))")
    // One CPU a node: the first tasks start on every node at once.
    #expect(Set(hosts.values) == Set(nodes), "tasks per host: \(Dictionary(grouping: hosts.keys, by: { hosts[$0]! }))")
    #expect(!hosts.values.contains(Cluster.runnerHost))
    try job.cleanup()
  }

  @Test(arguments: Cluster.multiNodeBackends)
  func twoNodesTwoTasksSrunHostnamePrintsTwoHostnames(backend: Backend) throws {
    let nodes = try Cluster.nodes()
    let job = try DriverJob(backend, parameters: "--nodes=2 --ntasks=2")
    let result = try job.runScript("srun hostname | sed 's/^/srun: /'")
    #expect(result.status == .exited(0), "\(result.stderr)")
    let hosts = result.stdout.split(separator: "\n").filter { $0.hasPrefix("srun: ") }.map { String($0.dropFirst(6)) }
    #expect(hosts.count == 2, "\(result.stdout)")
    #expect(Set(hosts).count == 2, "both tasks on one node: \(hosts)")
    #expect(Set(hosts).isSubset(of: Set(nodes)), "\(hosts) are not nodes of \(nodes)")
    try job.cleanup()
  }
}
