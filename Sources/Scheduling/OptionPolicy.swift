/// The admin's rules on top of the driver's own: options a cluster allows or denies, and
/// caps on what one CI job may ask for. Checked before anything is submitted, so a user
/// gets one clear line instead of a job that pends forever.
public struct OptionPolicy: Equatable, Sendable {
  /// When set, only these long option names may be used.
  public var allowed: Set<String>?
  public var denied: Set<String> = []
  public var maxTimeSeconds: Int?
  public var maxCPUs: Int?
  public var maxMemoryMB: Int?
  public var maxArrayTasks: Int?

  public init() {}

  /// Megabytes from sbatch's memory notation (`512`, `512M`, `2G`, `1T`, `100K`).
  public static func megabytes(_ text: String) -> Int? {
    var digits = Substring(text)
    var factor = 1.0
    if let last = digits.last, !last.isNumber {
      switch last.uppercased() {
      case "K": factor = 1.0 / 1024
      case "M": factor = 1
      case "G": factor = 1024
      case "T": factor = 1024 * 1024
      default: return nil
      }
      digits = digits.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let value = Double(digits) else { return nil }
    return Int((value * factor).rounded(.up))
  }

  public func check(_ request: JobRequest) throws {
    func refuse(_ message: String) -> JobRequest.ParseError { JobRequest.ParseError(message: "SCHEDULER_PARAMETERS: \(message)") }
    for option in request.options {
      if denied.contains(option.name) {
        throw refuse("--\(option.name) is not allowed on this cluster (the admin's settings deny it)")
      }
      if let allowed, !allowed.contains(option.name) {
        throw refuse("--\(option.name) is not allowed on this cluster; allowed: \(allowed.sorted().map { "--\($0)" }.joined(separator: " "))")
      }
    }
    if let cap = maxTimeSeconds {
      if let text = request.value(of: "time") {
        let seconds = try request.timeLimitSeconds
        guard let seconds, seconds <= cap else {
          throw refuse("--time=\(text) is over this cluster's cap of \(SlurmTime.format(seconds: cap)) per CI job")
        }
      }
    }
    let cpus = request.value(of: "cpus-per-task").flatMap { Int($0) } ?? 1
    if let cap = maxCPUs, cpus > cap {
      throw refuse("--cpus-per-task=\(cpus) is over this cluster's cap of \(cap) per CI job")
    }
    if let cap = maxMemoryMB {
      if let text = request.value(of: "mem") {
        guard let mb = OptionPolicy.megabytes(text) else { throw refuse("--mem=\(text) is not a memory size (e.g. 512M, 2G)") }
        if mb > cap { throw refuse("--mem=\(text) is over this cluster's cap of \(cap)M per CI job") }
      }
      if let text = request.value(of: "mem-per-cpu") {
        guard let mb = OptionPolicy.megabytes(text) else { throw refuse("--mem-per-cpu=\(text) is not a memory size") }
        if mb * cpus > cap { throw refuse("--mem-per-cpu=\(text) x \(cpus) CPUs is over this cluster's cap of \(cap)M per CI job") }
      }
    }
    if let cap = maxArrayTasks, let array = try request.array, array.taskIDs.count > cap {
      throw refuse("--array=\(array.text) has \(array.taskIDs.count) tasks, over this cluster's cap of \(cap)")
    }
  }

  /// Whether the driver itself knows this option (for checking admin lists).
  public static func isKnownOption(_ name: String) -> Bool { SbatchOptionSpec.byLong[name] != nil }
}
