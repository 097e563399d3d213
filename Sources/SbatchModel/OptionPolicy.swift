/// The admin's rules on top of the driver's own: options a cluster allows or denies, and
/// caps on what one CI job (each task of an array) may be allocated. A cap is on what
/// Slurm would allocate, not on a spelling: the sizing options are read the way Slurm
/// combines them, numbers only in their canonical form, and what cannot be bounded is
/// refused. Checked before anything is submitted, so a user gets one clear line instead of
/// a job that pends forever; Slurm's own QOS and association limits stay the real fence
/// (docs/executor.md).
public struct OptionPolicy: Equatable, Sendable, Codable {
  /// When set, only these long option names may be used.
  public var allowed: Set<String>?
  public var denied: Set<String> = []
  public var maxTimeSeconds: Int?
  public var maxCPUs: Int?
  public var maxMemoryMB: Int?
  public var maxArrayTasks: Int?
  public var maxGPUs: Int?
  /// GRES names a job may ask for while caps are set (a GPU counts against max_gpus).
  public var allowedGRES: Set<String> = []

  public init() {}

  /// Whether any allocation cap is set; then everything that sizes a job must be bounded.
  public var hasCaps: Bool { maxCPUs != nil || maxMemoryMB != nil || maxTimeSeconds != nil || maxGPUs != nil }

  /// A whole number written as plain digits (`^[0-9]+$`, at most 12 of them).
  static func canonicalNumber(_ text: Substring) -> Int? {
    guard !text.isEmpty, text.count <= 12, text.allSatisfy(\.isASCIIDigit) else { return nil }
    return Int(text)
  }

  /// The checked request with what the driver adds: the admin's defaults first, the user's
  /// options (checked against the allow/deny lists), and under caps a `--time` and a
  /// memory size always, so Slurm's "no limit" defaults never apply. `timeoutSeconds` is the
  /// CI job's timeout from the job payload.
  public func request(defaults: JobRequest, user: JobRequest, timeoutSeconds: Int?) throws -> JobRequest {
    try checkLists(user)
    var request = JobRequest(options: defaults.options + user.options)
    let size = try Allocation(request)
    try checkCaps(size, request)
    if let cap = maxTimeSeconds {
      if size.timeSeconds == nil {
        // Slurm counts whole minutes; never less than the CI job may run, never over the cap.
        let wanted = timeoutSeconds.map { SlurmTime.minutes(covering: $0) * 60 } ?? cap
        request.options.append(.init("time", String(max(1, min(wanted, cap) / 60))))
      }
    } else if !request.has("time"), let timeout = timeoutSeconds, timeout > 0 {
      request.options.append(.init("time", String(SlurmTime.minutes(covering: timeout))))
    }
    if let cap = maxMemoryMB, size.memoryMB == nil {
      request.options.append(.init("mem", "\(max(1, cap / size.nodes))M"))
    }
    // Without --nodes Slurm chooses the node count (`-n 8 --gpus-per-node=1` may span 8
    // nodes): under caps the job gets the one node the reckoning above assumed.
    if hasCaps && !request.has("nodes") {
      request.options.append(.init("nodes", "1"))
    }
    return request
  }

  func refuse(_ message: String) -> JobRequest.ParseError { JobRequest.ParseError(message: "SCHEDULER_PARAMETERS: \(message)") }

  func checkLists(_ request: JobRequest) throws {
    if let nice = request.value(of: "nice"), nice.hasPrefix("-") {
      throw refuse("--nice=\(nice) would raise the job's priority over other users'; only a positive --nice is allowed")
    }
    for option in request.options {
      if denied.contains(option.name) {
        throw refuse("--\(option.name) is not allowed on this cluster (the admin's settings deny it)")
      }
      if let allowed, !allowed.contains(option.name) {
        throw refuse("--\(option.name) is not allowed on this cluster; allowed: \(allowed.sorted().map { "--\($0)" }.joined(separator: " "))")
      }
    }
  }

  func checkCaps(_ size: Allocation, _ request: JobRequest) throws {
    if let cap = maxTimeSeconds, let text = request.value(of: "time") {
      guard let seconds = size.timeSeconds, seconds > 0 else {
        throw refuse("--time=\(text) means no time limit, which this cluster does not allow (cap \(SlurmTime.format(seconds: cap)) per CI job)")
      }
      if seconds > cap { throw refuse("--time=\(text) is over this cluster's cap of \(SlurmTime.format(seconds: cap)) per CI job") }
    }
    if let cap = maxCPUs {
      if let name = Allocation.unboundedCPUOptions.first(where: request.has) {
        throw refuse("--\(name) sizes the job in a way the driver cannot bound, which this cluster's CPU cap (\(cap)) does not allow")
      }
      if size.cpus > cap { throw refuse("\(size.cpuWords) is \(size.cpus) CPUs, over this cluster's cap of \(cap) per CI job") }
    }
    if let cap = maxMemoryMB, let memory = size.memoryMB {
      guard memory > 0 else {
        throw refuse("\(size.memoryWords) asks for all of a node's memory, which this cluster does not allow (cap \(cap)M per CI job)")
      }
      if memory > cap { throw refuse("\(size.memoryWords) is \(memory)M, over this cluster's cap of \(cap)M per CI job") }
    }
    if hasCaps {
      // A whole node's CPUs, memory and GRES, whichever cap is set.
      if request.has("exclusive") {
        throw refuse("--exclusive takes whole nodes, which this cluster's caps do not allow")
      }
      if request.has("spread-job") {
        throw refuse("--spread-job spreads the job over nodes, which this cluster's caps do not allow")
      }
      if request.has("gpus-per-socket") {
        throw refuse("--gpus-per-socket cannot be bounded by the driver; use --gpus or --gpus-per-node on this cluster")
      }
      for name in size.gres.keys.sorted() where name != "gpu" && !allowedGRES.contains(name) {
        throw refuse("--gres=\(name) is not allowed on this cluster\(allowedGRES.isEmpty ? "" : "; allowed: \(allowedGRES.sorted().joined(separator: ", "))")")
      }
      if size.gpus > 0 {
        if let cap = maxGPUs {
          if size.gpus > cap { throw refuse("the job asks for \(size.gpus) GPUs, over this cluster's cap of \(cap) per CI job") }
        } else if !allowedGRES.contains("gpu") {
          throw refuse("GPUs are not allowed on this cluster (no max_gpus in the admin's settings)")
        }
      }
    }
    if let cap = maxArrayTasks, let array = try request.array, array.taskIDs.count > cap {
      throw refuse("--array=\(array.text) has \(array.taskIDs.count) tasks, over this cluster's cap of \(cap)")
    }
  }

  /// Whether the driver itself knows this option (for checking admin lists).
  public static func isKnownOption(_ name: String) -> Bool { SbatchOptionSpec.byLong[name] != nil }
}

/// What one job (one array task) would be allocated, read from its options the way Slurm
/// combines them. Every number must be canonical; products are checked for overflow.
struct Allocation {
  var nodes = 1
  var tasks = 1
  var cpus = 1
  var cpuWords = "the job"
  /// nil: no memory option given; 0: "all of the node's memory".
  var memoryMB: Int?
  var memoryWords = ""
  var gpus = 0
  var gres: [String: Int] = [:]
  /// nil when no --time was given; 0 means unlimited.
  var timeSeconds: Int?

  /// Options that make Slurm allocate more than the driver can compute from the request:
  /// whole nodes, per-socket or per-core layouts, reserved cores.
  static let unboundedCPUOptions = [
    "exclusive", "hint", "ntasks-per-socket", "ntasks-per-core", "sockets-per-node", "cores-per-socket", "threads-per-core",
    "extra-node-info", "core-spec", "thread-spec",
  ]

  init(_ request: JobRequest) throws {
    func fail(_ message: String) -> JobRequest.ParseError { JobRequest.ParseError(message: "SCHEDULER_PARAMETERS: \(message)") }
    func count(_ name: String) throws -> Int? {
      guard let text = request.value(of: name) else { return nil }
      guard let value = OptionPolicy.canonicalNumber(Substring(text)) else {
        throw fail("--\(name)=\(text) is not a whole number (write digits only, e.g. --\(name)=4)")
      }
      return value
    }
    func product(_ values: [Int], _ what: String) throws -> Int {
      var result = 1
      for value in values {
        let (next, overflow) = result.multipliedReportingOverflow(by: value)
        guard !overflow, next <= 1_000_000_000_000 else { throw fail("\(what) is too large") }
        result = next
      }
      return result
    }
    if let text = request.value(of: "nodes") {
      // N or N-M (at most M nodes).
      let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
      let counts = bounds.compactMap { OptionPolicy.canonicalNumber($0) }
      guard (1...2).contains(bounds.count), counts.count == bounds.count, counts.allSatisfy({ $0 > 0 }) else {
        throw fail("--nodes=\(text) is not a node count (write N or MIN-MAX, e.g. --nodes=2)")
      }
      nodes = counts.max()!
    }
    let perTask = try count("cpus-per-task") ?? 1
    var taskCount = try count("ntasks") ?? 1
    if let perNode = try count("ntasks-per-node") { taskCount = max(taskCount, try product([nodes, perNode], "--ntasks-per-node x --nodes")) }
    for (name, value) in [("cpus-per-task", perTask), ("ntasks", taskCount), ("nodes", nodes)] where value == 0 {
      throw fail("--\(name)=0 is not a count Slurm accepts")
    }
    // At least one task per node: what is per task (GPUs, CPUs) is at least per node.
    taskCount = max(taskCount, nodes)

    // GPUs: each way of asking adds up to the most the job could hold.
    var gpuCounts: [Int] = []
    if let text = request.value(of: "gpus") { gpuCounts.append(try Allocation.typedCount(text, option: "gpus")) }
    if let text = request.value(of: "gpus-per-node") {
      gpuCounts.append(try product([try Allocation.typedCount(text, option: "gpus-per-node"), nodes], "--gpus-per-node x --nodes"))
    }
    if let text = request.value(of: "gpus-per-task") {
      gpuCounts.append(try product([try Allocation.typedCount(text, option: "gpus-per-task"), taskCount], "--gpus-per-task x --ntasks"))
    }
    if let text = request.value(of: "gres"), text != "none" {
      for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
        let (name, amount) = try Allocation.gres(String(entry))
        let total = try product([amount, nodes], "--gres x --nodes")
        gres[name, default: 0] += total
        if name == "gpu" { gpuCounts.append(total) }
      }
    }
    gpus = gpuCounts.max() ?? 0
    if let perGPU = try count("ntasks-per-gpu") { taskCount = max(taskCount, try product([perGPU, max(gpus, 1)], "--ntasks-per-gpu x GPUs")) }
    tasks = taskCount

    var cpuTotal = try product([max(tasks, nodes), perTask], "--ntasks x --cpus-per-task")
    cpuWords = tasks == 1 && nodes == 1
      ? "--cpus-per-task=\(perTask)" : "--ntasks=\(tasks) x --cpus-per-task=\(perTask)\(nodes > 1 ? " on \(nodes) nodes" : "")"
    if let minimum = try count("mincpus") {
      let perNodes = try product([minimum, nodes], "--mincpus x --nodes")
      if perNodes > cpuTotal { (cpuTotal, cpuWords) = (perNodes, "--mincpus=\(minimum) x \(nodes) nodes") }
    }
    if let perGPU = try count("cpus-per-gpu") {
      let viaGPUs = try product([perGPU, max(gpus, 1)], "--cpus-per-gpu x GPUs")
      if viaGPUs > cpuTotal { (cpuTotal, cpuWords) = (viaGPUs, "--cpus-per-gpu=\(perGPU) x \(max(gpus, 1)) GPUs") }
    }
    cpus = cpuTotal

    // Memory: Slurm takes one of the three; each is a per-something amount.
    let memoryOptions = ["mem", "mem-per-cpu", "mem-per-gpu"].filter(request.has)
    if memoryOptions.count > 1 {
      throw fail("\(memoryOptions.map { "--\($0)" }.joined(separator: " and ")) cannot be combined; give one memory size")
    }
    if let name = memoryOptions.first, let text = request.value(of: name) {
      guard let amount = SlurmMemory.megabytes(text) else {
        throw fail("--\(name)=\(text) is not a memory size (digits with an optional K, M, G or T, e.g. 512M, 2G)")
      }
      let times = name == "mem" ? nodes : name == "mem-per-cpu" ? cpus : max(gpus, 1)
      memoryMB = try product([amount, times], "--\(name) x \(name == "mem" ? "nodes" : name == "mem-per-cpu" ? "CPUs" : "GPUs")")
      memoryWords = times == 1 ? "--\(name)=\(text)" : "--\(name)=\(text) x \(times) \(name == "mem" ? "nodes" : name == "mem-per-cpu" ? "CPUs" : "GPUs")"
    }
    if let text = request.value(of: "time") {
      let notATime = fail("--time=\(text) is not a Slurm time (write minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
      guard !text.contains(" "), !text.contains("\t") else { throw notATime }
      do {
        // nil from SlurmTime is "unlimited", which Slurm also spells 0.
        timeSeconds = try SlurmTime.seconds(from: text) ?? 0
      } catch {
        throw notATime
      }
    }
  }

  /// `[type:]N` as --gpus and friends take it.
  static func typedCount(_ text: String, option: String) throws -> Int {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard (1...2).contains(parts.count), let value = OptionPolicy.canonicalNumber(parts.last!),
      parts.count == 1 || isName(parts[0])
    else {
      throw JobRequest.ParseError(message: "SCHEDULER_PARAMETERS: --\(option)=\(text) is not a GPU count (write N or TYPE:N, e.g. --\(option)=1)")
    }
    return value
  }

  /// One `--gres` entry, `name[:type][:count]`: its name and count per node.
  static func gres(_ entry: String) throws -> (String, Int) {
    let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
    guard (1...3).contains(parts.count), isName(parts[0]) else {
      throw JobRequest.ParseError(message: "SCHEDULER_PARAMETERS: --gres=\(entry) is not a GRES (write NAME[:TYPE][:COUNT], e.g. --gres=gpu:1)")
    }
    if parts.count == 1 { return (String(parts[0]), 1) }
    if let value = OptionPolicy.canonicalNumber(parts.last!) { return (String(parts[0]), value) }
    guard parts.count == 2, isName(parts[1]) else {
      throw JobRequest.ParseError(message: "SCHEDULER_PARAMETERS: --gres=\(entry): the count must be digits only")
    }
    return (String(parts[0]), 1)
  }

  static func isName(_ text: Substring) -> Bool {
    !text.isEmpty && text.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
  }
}
