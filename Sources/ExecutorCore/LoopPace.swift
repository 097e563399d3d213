#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// How long ci-run's output loop sleeps between looks at the job's files. Each look costs
/// a few system calls and the watch's step; at a tenth of a second that was most of
/// ci-run's CPU for a job that sleeps (0.19 CPU-s a minute in a debug build). So the loop
/// looks every `fast` seconds while the job shows signs of life (output, a status file,
/// its start) and for `quietAfter` seconds after the last one, then backs off by half
/// again per look to every `slow` seconds. Lines that follow each other, and the end of a
/// job that just printed, are seen as quickly as before; the first line after a long
/// silence, or the end of a job that slept to it, at most `slow` late (GitLab's own log
/// page refreshes every few seconds).
public struct LoopPace: Sendable {
  public let fast: TimeInterval
  public let slow: TimeInterval
  public let quietAfter: TimeInterval
  var lastActivity: Date
  var current: TimeInterval

  public init(fast: TimeInterval, slow: TimeInterval, quietAfter: TimeInterval = 10, start: Date) {
    self.fast = fast
    self.slow = max(slow, fast)
    self.quietAfter = quietAfter
    lastActivity = start
    current = fast
  }

  /// The sleep before the next look, after one that saw activity (`active`) or not.
  public mutating func next(active: Bool, now: Date) -> TimeInterval {
    if active {
      lastActivity = now
      current = fast
    } else if now.timeIntervalSince(lastActivity) >= quietAfter {
      current = min(slow, current * 1.5)
    }
    return current
  }
}
