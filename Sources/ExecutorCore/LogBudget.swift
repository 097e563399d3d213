/// The CI log's size against the runner's `output_limit`, past which gitlab-runner drops
/// the rest of the log (the job itself runs on). Streaming stops `reserve` bytes before the
/// limit, so that what follows still reaches the page: the one note naming the complete
/// logs' artifact, each later task's section with its tail (`JUnitReport.tail`: its last 20
/// lines, at most 8 KiB) and the summary. Pure counting: `JobOutput` asks it before every
/// write (Tests/ExecutorCoreTests/LogSectionsTests.swift).
public struct LogBudget: Equatable, Sendable {
  public let limit: Int
  /// Bytes put in the log so far (the job's output and the markers around it).
  public private(set) var written = 0
  /// Output is no longer streamed: only tails follow.
  public private(set) var exceeded = false

  public init(limit: Int) { self.limit = limit }

  /// Kept below the limit for what follows the stream: a quarter of it, at most 256 KiB.
  public var reserve: Int { min(limit / 4, 256 << 10) }

  /// How many of `count` bytes of output may still be streamed. Fewer than `count`: the
  /// budget is exceeded from now on (and stays so).
  public mutating func admit(_ count: Int) -> Int {
    guard !exceeded else { return 0 }
    let room = max(0, limit - reserve - written)
    guard count > room else {
      written += count
      return count
    }
    exceeded = true
    return room
  }

  /// Bytes written whatever the budget (markers, the cut stream's last lines, tails).
  public mutating func count(_ bytes: Int) { written += bytes }

  /// Whether a tail of `bytes` still fits, leaving a quarter of the reserve for the summary;
  /// an array of many tasks past the limit gets only their sections once it does not.
  public func tailFits(_ bytes: Int) -> Bool { written + bytes <= limit - reserve / 4 }

  /// A size as the note says it: `4 MiB`, `512 KiB`, `70000 bytes`.
  public static func describe(_ bytes: Int) -> String {
    if bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
    if bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
    return "\(bytes) bytes"
  }
}
