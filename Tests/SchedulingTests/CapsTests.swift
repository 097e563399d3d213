import Scheduling
import Testing

/// The caps are on what Slurm would allocate (issue #12's escapes, each one here).
@Suite struct CapsTests {
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
    ("-N 2", "--ntasks=1 x --cpus-per-task=1 on 2 nodes is 2 CPUs"),
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
    #expect(try request("-c 1") == ["--cpus-per-task=1", "--time=10", "--mem=1024M"])
    #expect(try request("", timeout: 86400) == ["--time=10", "--mem=1024M"])
    #expect(try request("", timeout: 120) == ["--time=2", "--mem=1024M"])
    #expect(try request("-t 5 --mem=512M") == ["--time=5", "--mem=512M"])
  }

  @Test func gpusCountAgainstTheirCap() throws {
    var policy = CapsTests.capped
    policy.maxGPUs = 2
    policy.maxCPUs = 8
    #expect(try request("--gpus=2", policy: policy).contains("--gpus=2"))
    #expect(refusal("--gpus-per-task=1 -n 3", policy: policy)?.contains("asks for 3 GPUs, over this cluster's cap of 2") == true)
    #expect(refusal("--gres=gpu:tesla:3", policy: policy)?.contains("asks for 3 GPUs") == true)
    #expect(refusal("--gpus-per-socket=1", policy: policy)?.contains("cannot be bounded") == true)
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
    #expect(OptionPolicy.megabytes("2G") == 2048)
    #expect(OptionPolicy.megabytes("100K") == 1)
    #expect(OptionPolicy.megabytes("9223372036854775807") == nil)
    #expect(OptionPolicy.megabytes("999999999999T") == nil)
    #expect(OptionPolicy.megabytes(" 1G") == nil)
    #expect(OptionPolicy.megabytes("1GB") == nil)
  }

  /// Random combinations of every sizing option: whatever is accepted stays under every
  /// cap by the driver's own reckoning (the Slurm test reads the real allocation back).
  @Test func fuzzedCombinationsNeverPassACap() throws {
    var generator = SeededGenerator(seed: 12)
    var accepted = 0
    for _ in 0..<5000 {
      let parameters = CapsFuzz.randomParameters(using: &generator)
      guard let words = try? request(parameters) else { continue }
      accepted += 1
      let final = try JobRequest.parse(words.joined(separator: " "))
      #expect(CapsFuzz.withinCaps(final, CapsTests.capped), "\(parameters) -> \(words)")
    }
    #expect(accepted > 50)
  }
}

/// The caps fuzz's inputs, shared with the real-Slurm fuzz (ExecutorEndToEndTests).
enum CapsFuzz {
  static let choices: [[String]] = [
    ["-c 1", "-c 2", "-c 0", "-c ' 4'", "--cpus-per-task=1", "-c 08"],
    ["-n 1", "-n 2", "--ntasks=4", "-n 0"],
    ["-N 1", "-N 2", "--nodes=1-2"],
    ["--mem=512M", "--mem=1G", "--mem=2G", "--mem=0", "--mem-per-cpu=512M", "--mem-per-cpu=1G", "--mem=1025M"],
    ["-t 5", "-t 10", "-t 11", "--time=0", "--time=UNLIMITED", "-t 1:00", "-t 0:10:01"],
    ["--exclusive", "--gres=gpu:1", "--gpus=1", "--mincpus=2", "--ntasks-per-node=2", "--cpus-per-gpu=2"],
  ]

  static func randomParameters(using generator: inout SeededGenerator) -> String {
    var words: [String] = []
    for group in choices where Bool.random(using: &generator) {
      words.append(group.randomElement(using: &generator)!)
    }
    return words.shuffled(using: &generator).joined(separator: " ")
  }

  static func withinCaps(_ request: JobRequest, _ policy: OptionPolicy) -> Bool {
    let cpus = (Int(request.value(of: "cpus-per-task") ?? "1") ?? 99) * max(Int(request.value(of: "ntasks") ?? "1") ?? 99, 1)
    let nodes = request.value(of: "nodes").map { $0.split(separator: "-").compactMap { Int($0) }.max() ?? 99 } ?? 1
    let memory = request.value(of: "mem").flatMap(OptionPolicy.megabytes).map { $0 * nodes }
      ?? request.value(of: "mem-per-cpu").flatMap(OptionPolicy.megabytes).map { $0 * cpus } ?? Int.max
    let time = request.value(of: "time").flatMap { (try? SlurmTime.seconds(from: $0)) ?? nil } ?? Int.max
    return cpus <= policy.maxCPUs! && nodes <= policy.maxCPUs! && memory <= policy.maxMemoryMB! && time <= policy.maxTimeSeconds!
      && time > 0 && memory > 0 && !request.has("exclusive") && !request.has("gres") && !request.has("gpus")
  }
}

/// SplitMix64: the same sequence on every run, so a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
