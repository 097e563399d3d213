import Scheduling
import TestSizes
import Testing
import SbatchModel

/// The caps are on what Slurm would allocate (issue #12's escapes, each one here).
@Suite(.tags(.small)) struct CapsTests {
  static let capped: OptionPolicy = {
    var policy = OptionPolicy()
    policy.maxCPUs = 1
    policy.maxMemoryMB = 1024
    policy.maxTimeSeconds = 600
    return policy
  }()

  func request(_ parameters: String, policy: OptionPolicy = capped, timeout: Int? = nil) throws -> [String] {
    try policy.request(defaults: JobRequest(), user: try JobRequest.parse(parameters), timeoutSeconds: timeout).arguments
  }

  func refusal(_ parameters: String, policy: OptionPolicy = capped) -> String? {
    do {
      _ = try request(parameters, policy: policy)
      return nil
    } catch let error as JobRequest.ParseError {
      return error.message
    } catch {
      return "\(error)"
    }
  }

  @Test(arguments: [
    ("-n 8 --mem=0 --time=0", "--time=0 means no time limit"),
    ("-n 8 --mem=0", "--ntasks=8 x --cpus-per-task=1 is 8 CPUs"),
    ("-c ' 4'", "--cpus-per-task= 4 is not a whole number"),
    ("--exclusive", "--exclusive sizes the job in a way the driver cannot bound"),
    ("-n 4 --mem-per-cpu=1G", "is 4 CPUs, over this cluster's cap of 1"),
    ("--mem-per-cpu=2G", "--mem-per-cpu=2G is 2048M, over this cluster's cap of 1024M"),
    ("--mem=0", "asks for all of a node's memory"),
    ("--time=0", "--time=0 means no time limit"),
    ("--time=INFINITE", "--time=INFINITE means no time limit"),
    ("-t 11", "--time=11 is over this cluster's cap of 00:10:00"),
    ("-N 2", "--ntasks=2 x --cpus-per-task=1 on 2 nodes is 2 CPUs"),
    ("-c 2", "--cpus-per-task=2 is 2 CPUs, over this cluster's cap of 1"),
    ("--nodes=1-4", "on 4 nodes is 4 CPUs"),
    ("--gres=gpu:1", "GPUs are not allowed on this cluster"),
    ("--gpus=2", "GPUs are not allowed on this cluster"),
    ("--gres=fpga:1", "--gres=fpga is not allowed on this cluster"),
    ("--mem-per-gpu=1G --gpus=1", "GPUs are not allowed"),
    ("--mem=99999999999999999999G", "--mem=99999999999999999999G is not a memory size"),
    ("--mem=9999999999T", "--mem=9999999999T is not a memory size"),
    ("-c 99999999999999999999", "is not a whole number"),
    ("-n 999999999 -c 999999999", "--ntasks x --cpus-per-task is too large"),
    ("--mem=1G --mem-per-cpu=1G", "--mem and --mem-per-cpu cannot be combined"),
    ("--nice=-10000", "would raise the job's priority"),
    ("--priority=4000000000", "only Slurm's operators may set a job's priority"),
    ("--cpus-per-gpu=4", "--cpus-per-gpu=4 x 1 GPUs is 4 CPUs"),
    ("--mincpus=2", "--mincpus=2 x 1 nodes is 2 CPUs"),
    ("--ntasks-per-node=2", "is 2 CPUs"),
  ])
  func escapesAreRefused(parameters: String, message: String) {
    let refused = refusal(parameters)
    #expect(refused?.contains(message) == true, "\(parameters): \(refused ?? "accepted")")
    #expect(refused?.contains("\n") != true)
  }

  @Test func underCapsTimeAndMemoryAreAlwaysPassed() throws {
    // No --time and no timeout: the cap itself; a timeout above the cap: clamped.
    #expect(try request("-c 1") == ["--cpus-per-task=1", "--time=10", "--mem=1024M", "--nodes=1"])
    #expect(try request("", timeout: 86400) == ["--time=10", "--mem=1024M", "--nodes=1"])
    #expect(try request("", timeout: 120) == ["--time=2", "--mem=1024M", "--nodes=1"])
    #expect(try request("-t 5 --mem=512M") == ["--time=5", "--mem=512M", "--nodes=1"])
  }

  /// Without --nodes Slurm picks the node count: `-n 8 --ntasks-per-node=1` is 8 nodes, and
  /// every per-node amount 8 times over. Under caps the job is pinned to one node.
  @Test func perNodeAmountsCannotMultiplyOverNodesSlurmPicks() throws {
    var policy = OptionPolicy()
    policy.maxCPUs = 8
    policy.maxMemoryMB = 8192
    policy.maxGPUs = 1
    let words = try request("-n 8 --ntasks-per-node=1 --gpus-per-node=1", policy: policy)
    #expect(words.last == "--nodes=1")
    #expect(refusal("--spread-job -n 8", policy: policy)?.contains("--spread-job spreads the job over nodes") == true)
    #expect(refusal("--hint=nomultithread", policy: policy)?.contains("--hint sizes the job") == true)
    // Whole nodes break a memory or GPU cap as much as a CPU cap.
    var memoryOnly = OptionPolicy()
    memoryOnly.maxMemoryMB = 1024
    #expect(refusal("--exclusive --mem-per-cpu=100M", policy: memoryOnly)?.contains("--exclusive takes whole nodes") == true)
  }

  @Test func gpusCountAgainstTheirCap() throws {
    var policy = CapsTests.capped
    policy.maxGPUs = 2
    policy.maxCPUs = 8
    #expect(try request("--gpus=2", policy: policy).contains("--gpus=2"))
    #expect(refusal("--gpus-per-task=1 -n 3", policy: policy)?.contains("asks for 3 GPUs, over this cluster's cap of 2") == true)
    #expect(refusal("--gres=gpu:tesla:3", policy: policy)?.contains("asks for 3 GPUs") == true)
    #expect(refusal("--gpus-per-socket=1", policy: policy)?.contains("cannot be bounded") == true)
    // One task per node at least: per-task GPUs count per node (found by the fuzz below).
    #expect(refusal("-N 3 --gpus-per-task=1", policy: policy)?.contains("asks for 3 GPUs") == true)
    policy.allowedGRES = ["fpga"]
    #expect(try request("--gres=fpga:1", policy: policy).contains("--gres=fpga:1"))
  }

  @Test func withoutCapsOnlyCanonicalNumbersAreRequired() throws {
    let open = OptionPolicy()
    #expect(try request("-n 8 --mem=0 --exclusive", policy: open) == ["--ntasks=8", "--mem=0", "--exclusive"])
    #expect(try request("", policy: open, timeout: 3601) == ["--time=61"])
    #expect(refusal("-c abc", policy: open)?.contains("--cpus-per-task=abc is not a whole number") == true)
  }

  @Test func theAdminsDefaultsCountTowardsTheCaps() throws {
    let defaults = try JobRequest.parse("-c 2")
    #expect(throws: JobRequest.ParseError.self) {
      try CapsTests.capped.request(defaults: defaults, user: JobRequest(), timeoutSeconds: nil)
    }
  }

  @Test func megabytesNeverOverflow() {
    #expect(SlurmMemory.megabytes("2G") == 2048)
    #expect(SlurmMemory.megabytes("100K") == 1)
    #expect(SlurmMemory.megabytes("9223372036854775807") == nil)
    #expect(SlurmMemory.megabytes("999999999999T") == nil)
    #expect(SlurmMemory.megabytes(" 1G") == nil)
    #expect(SlurmMemory.megabytes("1GB") == nil)
  }

  /// Random combinations of every sizing option, each chosen on its own: whatever is
  /// accepted is pinned to one node, has its time and memory spelled out under the caps,
  /// and asks for no whole node (the Slurm test reads the real allocation back).
  @Test func fuzzedCombinationsNeverPassACap() throws {
    var policy = OptionPolicy()
    policy.maxCPUs = 4
    policy.maxMemoryMB = 4096
    policy.maxTimeSeconds = 600
    policy.maxGPUs = 1
    var generator = ParserFuzzTests.SplitMix(state: 12)
    var accepted = 0
    for _ in 0..<5000 {
      let parameters = CapsFuzz.randomParameters(using: &generator)
      guard let words = try? request(parameters, policy: policy) else { continue }
      accepted += 1
      let final = try JobRequest.parse(words.joined(separator: " "))
      #expect(CapsFuzz.withinCaps(final, policy), "\(parameters) -> \(words)")
    }
    #expect(accepted > 100)
  }
}

/// The caps fuzz's inputs: every option that sizes a job, each group drawn on its own.
enum CapsFuzz {
  static let choices: [[String]] = [
    ["-c 1", "-c 2", "-c 0", "-c ' 4'", "--cpus-per-task=4", "-c 08"], ["-n 1", "-n 2", "--ntasks=8", "-n 0"],
    ["-N 1", "-N 2", "--nodes=1-2"], ["--ntasks-per-node=1", "--ntasks-per-node=4"],
    ["--mem=512M", "--mem=4G", "--mem=0", "--mem-per-cpu=512M", "--mem-per-cpu=2G", "--mem=4097M", "--mem-per-gpu=1G"],
    ["-t 5", "-t 10", "-t 11", "--time=0", "--time=UNLIMITED", "-t 1:00", "-t 0:10:01"],
    ["--gpus=1", "--gpus=2", "--gpus-per-node=1", "--gpus-per-task=1", "--gres=gpu:1", "--gres=gpu:tesla:2"],
    ["--exclusive"], ["--spread-job"], ["--hint=nomultithread"], ["--mincpus=2", "--mincpus=8"], ["--cpus-per-gpu=2", "--cpus-per-gpu=8"],
  ]

  static func randomParameters(using generator: inout ParserFuzzTests.SplitMix) -> String {
    var words: [String] = []
    for group in choices where Int.random(in: 0..<3, using: &generator) == 0 {
      words.append(group.randomElement(using: &generator)!)
    }
    return words.shuffled(using: &generator).joined(separator: " ")
  }

  /// Invariants of an accepted request, read off the final argv alone: the node count is
  /// spelled out (never Slurm's choice), and with it the most the job can hold stays under
  /// every cap.
  static func withinCaps(_ request: JobRequest, _ policy: OptionPolicy) -> Bool {
    func number(_ name: String, _ otherwise: Int) -> Int { request.value(of: name).map { Int($0.split(separator: ":").last ?? "") ?? 999 } ?? otherwise }
    guard let nodeText = request.value(of: "nodes") else { return false }
    let nodes = nodeText.split(separator: "-").compactMap { Int($0) }.max() ?? 999
    let tasks = max(number("ntasks", 1), number("ntasks-per-node", 0) * nodes, nodes)
    let gpus = max(number("gpus", 0), number("gpus-per-node", 0) * nodes, number("gpus-per-task", 0) * tasks, number("gres", 0) * nodes)
    let cpus = max(tasks * number("cpus-per-task", 1), number("mincpus", 0) * nodes, number("cpus-per-gpu", 0) * max(gpus, 1))
    let memoryOptions = ["mem", "mem-per-cpu", "mem-per-gpu"].filter(request.has)
    guard memoryOptions.count == 1, let amount = SlurmMemory.megabytes(request.value(of: memoryOptions[0])!), amount > 0 else { return false }
    let memory = amount * [nodes, cpus, max(gpus, 1)][["mem", "mem-per-cpu", "mem-per-gpu"].firstIndex(of: memoryOptions[0])!]
    let time = request.value(of: "time").flatMap { (try? SlurmTime.seconds(from: $0)) ?? nil } ?? Int.max
    return cpus <= policy.maxCPUs! && memory <= policy.maxMemoryMB! && gpus <= policy.maxGPUs! && time > 0
      && time <= policy.maxTimeSeconds! && !request.has("exclusive") && !request.has("spread-job")
  }
}
