/// Slurm's memory sizes, the one grammar for both places they appear: what sbatch is asked
/// (`--mem=2G`, the admin's `max_memory`, a pipeline spec's `mem`) and what sacct reports
/// (`ReqMem`, `MaxRSS`). A size is a number and at most one unit letter, K, M, G or T in
/// either case, each 1024 times the one before.
public enum SlurmMemory {
  /// Megabytes from sbatch's notation (`512`, `512M`, `2G`, `1T`, `100K`): plain digits (at
  /// most 12) and at most one unit, nothing else; no unit is megabytes, as sbatch reads it,
  /// and kilobytes round up. Nil when it is not that or more than an exabyte.
  public static func megabytes(_ text: String) -> Int? { size(text, inPower: megabyte) }

  /// Bytes from the same notation (`4M`, `512K`, `1G`; no unit is megabytes): the driver's
  /// `output_limit` is written as sbatch's `--mem` is.
  public static func bytes(_ text: String) -> Int? { size(text, inPower: 0) }

  /// The size in units of 1024^`target` bytes, rounded up.
  static func size(_ text: String, inPower target: Int) -> Int? {
    let (digits, unit) = split(Substring(text))
    guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy(\.isASCIIDigit), let value = Int(digits) else { return nil }
    let power = unit ?? megabyte
    let factor = power > target ? 1 << (10 * (power - target)) : 1
    let divisor = power < target ? 1 << (10 * (target - power)) : 1
    let (product, overflow) = value.multipliedReportingOverflow(by: factor)
    // An exabyte is more than any node has: past that it is a typo or an attack.
    guard !overflow, product <= 1 << (10 * (6 - target)) else { return nil }
    return (product + divisor - 1) / divisor
  }

  /// Bytes from sacct's `ReqMem` or `MaxRSS` (`2G`, `104857K`, `0`): no unit is bytes, as
  /// sacct prints an empty step's `0`. An older Slurm's trailing `n` or `c` says per node or
  /// per CPU; a per-CPU size is multiplied by `cpus`. Nil for an empty or unknown field.
  public static func accountedBytes(_ text: String, cpus: Int?) -> Double? {
    var rest = Substring(text)
    var perCPU = false
    if let last = rest.last, last == "n" || last == "c" {
      perCPU = last == "c"
      rest = rest.dropLast()
    }
    let (number, unit) = split(rest)
    guard let value = Double(number) else { return nil }
    return value * Double(1 << (10 * (unit ?? 0))) * (perCPU ? Double(cpus ?? 1) : 1)
  }

  /// The power of 1024 bytes a unit letter stands for.
  static let units: [Character: Int] = ["K": 1, "k": 1, "M": 2, "m": 2, "G": 3, "g": 3, "T": 4, "t": 4]
  static let megabyte = 2

  /// The number and the unit's power; a last character that is no digit and no unit stays
  /// in the number (so the number does not parse).
  static func split(_ text: Substring) -> (number: Substring, unit: Int?) {
    guard let last = text.last, let power = units[last] else { return (text, nil) }
    return (text.dropLast(), power)
  }
}
