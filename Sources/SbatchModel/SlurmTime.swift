/// Slurm's time-limit notation: `minutes`, `minutes:seconds`, `hours:minutes:seconds`,
/// `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`, `UNLIMITED`.
/// It lives with the sbatch model because both backends, the admin caps and ci-gen use it.
public enum SlurmTime {
  public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
  }

  /// Seconds, or nil for an unlimited time.
  public static func seconds(from text: String) throws -> Int? {
    try parse(text, fractionalSeconds: false)?.whole
  }

  /// A time as sacct reports it (`TotalCPU`, `Elapsed`: `1-02:03:04`, `02:03:04`,
  /// `03:04.500`): the same notation, whose seconds field may carry a fraction. Nil for an
  /// empty field, an unlimited time and anything that is no time.
  public static func accountedSeconds(_ text: String) -> Double? {
    guard let time = try? parse(text, fractionalSeconds: true) else { return nil }
    return Double(time.whole) + time.fraction
  }

  /// The one reading of the notation; a fraction is allowed only on a seconds field, and
  /// only when asked for (sbatch takes whole seconds).
  private static func parse(_ text: String, fractionalSeconds: Bool) throws -> (whole: Int, fraction: Double)? {
    let trimmed = text.strippingBlanks()
    if ["UNLIMITED", "INFINITE", "-1"].contains(trimmed.uppercased()) { return nil }
    func fail() -> ParseError {
      ParseError(
        message:
          "time '\(text)' is not a Slurm time (write minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"
      )
    }
    func number(_ part: Substring) throws -> Int {
      guard !part.isEmpty, part.count <= 9, part.allSatisfy(\.isASCIIDigit), let value = Int(part) else {
        throw fail()
      }
      return value
    }
    let dashParts = trimmed.split(separator: "-", omittingEmptySubsequences: false)
    guard (1...2).contains(dashParts.count) else { throw fail() }
    var clock = dashParts.last!.split(separator: ":", omittingEmptySubsequences: false)
    var fraction = 0.0
    let endsInSeconds = dashParts.count == 2 ? clock.count == 3 : clock.count >= 2
    if fractionalSeconds, endsInSeconds, let dot = clock.last!.firstIndex(of: ".") {
      let digits = clock.last![clock.last!.index(after: dot)...]
      guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy(\.isASCIIDigit) else { throw fail() }
      fraction = Double("0.\(digits)") ?? 0
      clock[clock.count - 1] = clock.last![..<dot]
    }
    if dashParts.count == 2 {
      let days = try number(dashParts[0])
      guard (1...3).contains(clock.count) else { throw fail() }
      let hours = try number(clock[0])
      let minutes = clock.count > 1 ? try number(clock[1]) : 0
      let seconds = clock.count > 2 ? try number(clock[2]) : 0
      return (((days * 24 + hours) * 60 + minutes) * 60 + seconds, fraction)
    }
    switch clock.count {
    case 1: return (try number(clock[0]) * 60, fraction)
    case 2: return (try number(clock[0]) * 60 + number(clock[1]), fraction)
    case 3: return (try (number(clock[0]) * 60 + number(clock[1])) * 60 + number(clock[2]), fraction)
    default: throw fail()
    }
  }

  /// `[D-]HH:MM:SS`, as Slurm prints limits.
  public static func format(seconds: Int) -> String {
    let days = seconds / 86400
    let hours = seconds % 86400 / 3600
    let minutes = seconds % 3600 / 60
    let secs = seconds % 60
    let clock = "\(pad(hours)):\(pad(minutes)):\(pad(secs))"
    return days > 0 ? "\(days)-\(clock)" : clock
  }

  /// The `--time` minutes a CI job timeout gets: Slurm counts whole minutes, and the job
  /// must never get less than the CI job may run.
  public static func minutes(covering seconds: Int) -> Int { (seconds + 59) / 60 }

  private static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}

extension Character {
  var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension String {
  func strippingBlanks() -> String {
    var scalars = Substring(self)
    while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
    while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
    return String(scalars)
  }
}
