import ChildProcesses
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// The time and the waits of a phase's loops, injected so that the lifecycle tests run a
/// job's minutes in milliseconds against a manual clock (ExecutorTesting's `ManualClock`).
public protocol DriverClock: Sendable {
  var now: Date { get }
  func sleep(_ seconds: TimeInterval)
}

public struct SystemClock: DriverClock {
  public init() {}
  public var now: Date { Date() }
  public func sleep(_ seconds: TimeInterval) { sleepSeconds(seconds) }
}
