/// The timeouts gitlab-runner reads from a job's variables (gitlab-runner ≥ 16.4,
/// `common/build.go` `getStageTimeoutContexts`): the user's script stages share one clock
/// from the start of the first of them, after_script has its own from its start, and both
/// live inside the CI job's timeout, which runs from the moment the runner took the job.
/// The driver (to fit the Slurm job inside them) and ci-local (to play the runner) read
/// them the same way, here.
public enum StageTimeouts {
  /// A Go duration (`30m`, `1h30m`) for the user's script stages together.
  public static let script = "RUNNER_SCRIPT_TIMEOUT"
  /// A Go duration for after_script; 5 minutes when unset.
  public static let afterScript = "RUNNER_AFTER_SCRIPT_TIMEOUT"
  /// The CI job's timeout in seconds, as a predefined variable (the payload's
  /// `runner_info.timeout` says the same, and is the runner's own word).
  public static let job = "CI_JOB_TIMEOUT"
  /// after_script's limit when its variable is unset (`common.AfterScriptTimeout`).
  public static let defaultAfterScriptSeconds: Double = 300

  /// How the runner takes one of the two stage variables.
  public enum Reading: Equatable, Sendable {
    /// Unset, blank, or `0`: the stage's default applies.
    case unset
    /// A limit of this many seconds.
    case seconds(Double)
    /// Not a Go duration: the runner warns and ignores it.
    case malformed
    /// A negative duration: the runner warns and ignores it.
    case negative
    /// Longer than what is left of the CI job: the runner warns and keeps the default
    /// (the job's own clock still bounds the stage).
    case longerThanJob
  }

  /// `jobLeft`: seconds left of the CI job when the stage starts (nil: unknown).
  public static func read(_ text: String?, jobLeft: Double?) -> Reading {
    guard let text, !text.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) else { return .unset }
    guard let seconds = GoDuration.seconds(text) else { return .malformed }
    if seconds < 0 { return .negative }
    if let jobLeft, seconds > jobLeft { return .longerThanJob }
    return seconds == 0 ? .unset : .seconds(seconds)
  }

  /// The runner's own warning for a reading it ignores (ci-local prints these as the runner
  /// does); nil when there is nothing to say.
  public static func runnerWarning(_ reading: Reading, name: String, text: String?) -> String? {
    let shown = text ?? ""
    switch reading {
    case .unset, .seconds: return nil
    case .malformed: return "Ignoring malformed \(name) timeout: \(shown)"
    case .negative: return "Ignoring relative \(name) timeout: \(shown)"
    case .longerThanJob: return "\(name) timeout: \(shown) is longer than job timeout. Setting to job timeout"
    }
  }
}

/// Go's `time.ParseDuration` notation: an optional sign, then one or more decimal numbers
/// each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `1.5h`, `300ms`;
/// a bare `0` is allowed. Nil for anything else, and for more than Go's 2^63 ns.
public enum GoDuration {
  static let units: [(String, Double)] = [
    ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
  ]
  /// Go's limit: an Int64 of nanoseconds, about 292 years.
  static let maximumSeconds = Double(Int64.max) / 1e9

  public static func seconds(_ text: String) -> Double? {
    // Far longer than any real duration: refused before any work.
    guard text.utf8.count <= 64 else { return nil }
    var rest = Substring(text)
    var sign = 1.0
    if let first = rest.first, first == "-" || first == "+" {
      sign = first == "-" ? -1 : 1
      rest = rest.dropFirst()
    }
    if rest == "0" { return 0 }
    guard !rest.isEmpty else { return nil }
    var total = 0.0
    while !rest.isEmpty {
      let whole = rest.prefix { $0.isASCII && $0.isNumber }
      rest = rest.dropFirst(whole.count)
      var fraction = Substring("")
      if rest.first == "." {
        rest = rest.dropFirst()
        fraction = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(fraction.count)
      }
      guard !whole.isEmpty || !fraction.isEmpty, let number = Double("\(whole.isEmpty ? "0" : whole).\(fraction.isEmpty ? "0" : fraction)")
      else { return nil }
      guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) && !isUnitLetter(rest.dropFirst($0.0.count).first) })
      else { return nil }
      rest = rest.dropFirst(unit.count)
      total += number * scale
      guard total <= maximumSeconds else { return nil }
    }
    return sign * total
  }

  /// A unit is a whole run of letters: `5mo` is no duration, `5m3s` is.
  static func isUnitLetter(_ character: Character?) -> Bool {
    guard let character else { return false }
    return !(character.isASCII && character.isNumber) && character != "."
  }
}
