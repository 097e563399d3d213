/// A Slurm job-array index expression: `0-9`, `1,3,5-7`, `0-15:4`, each optionally with
/// `%N` (at most N tasks at once).
public struct ArraySpec: Equatable, Sendable, CustomStringConvertible {
  /// The CI job's exit code, by default, when some but not all tasks of an array failed
  /// (the driver's `partial_array_exit_code`; ci-gen's `allow_partial: true` accepts it).
  /// 75 is EX_TEMPFAIL, clear of a script's usual 1/2, 124 (time limit), 137 (memory) and
  /// 143 (stopped).
  public static let partialFailureExitCode: Int32 = 75

  public var taskIDs: [Int]
  public var throttle: Int?
  /// The text as the user wrote it (passed on to sbatch unchanged).
  public var text: String

  /// A guard against expressions that would make the driver follow millions of files;
  /// admins can set a lower cap in the settings.
  public static let hardLimit = 100_000
  /// Slurm's own ceiling (MaxArraySize is at most 4000001): a bigger index can never be
  /// submitted, and refusing it here keeps the arithmetic below far from overflow.
  public static let maxIndex = 4_000_000

  public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
  }

  public init(parsing text: String) throws {
    self.text = text
    var body = Substring(text)
    throttle = nil
    if let percent = body.firstIndex(of: "%") {
      let limit = body[body.index(after: percent)...]
      guard let value = ArraySpec.number(limit), value > 0 else {
        throw ParseError(message: "--array=\(text): the throttle after % must be a positive whole number")
      }
      throttle = value
      body = body[..<percent]
    }
    guard !body.isEmpty else {
      throw ParseError(message: "--array=\(text): no task indexes (write e.g. 0-9 or 1,3,5)")
    }
    var ids: [Int] = []
    var seen = Set<Int>()
    for part in body.split(separator: ",", omittingEmptySubsequences: false) {
      var range = part
      var step = 1
      if let colon = part.firstIndex(of: ":") {
        guard let value = ArraySpec.number(part[part.index(after: colon)...]), value > 0 else {
          throw ParseError(message: "--array=\(text): the step after : must be a positive whole number")
        }
        step = value
        range = part[..<colon]
      }
      let bounds = range.split(separator: "-", omittingEmptySubsequences: false)
      guard (1...2).contains(bounds.count), let low = ArraySpec.number(bounds[0]),
        let high = bounds.count == 2 ? ArraySpec.number(bounds[1]) : low, high >= low
      else {
        throw ParseError(message: "--array=\(text): '\(part)' is not an index or a range like 0-9")
      }
      guard high <= ArraySpec.maxIndex else {
        throw ParseError(message: "--array=\(text): index \(bounds.last!) is over Slurm's largest array index (\(ArraySpec.maxIndex))")
      }
      guard (high - low) / step + ids.count < ArraySpec.hardLimit else {
        throw ParseError(message: "--array=\(text): more than \(ArraySpec.hardLimit) tasks")
      }
      for id in stride(from: low, through: high, by: step) where seen.insert(id).inserted {
        ids.append(id)
      }
    }
    taskIDs = ids.sorted()
  }

  public var description: String { text }

  /// Plain decimal digits only (no sign, else nil); a number too big for an Int is Int.max,
  /// which is over every limit and is refused as such.
  static func number(_ text: Substring) -> Int? {
    guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
    return Int(text) ?? Int.max
  }
}
