import ExecutorCore
import Foundation
import Synchronization

/// A clock that moves only when a phase sleeps: a job's minutes pass in milliseconds, and
/// what a test scheduled for a moment (a cancel, a file the job writes) happens exactly then.
public final class ManualClock: DriverClock {
  struct State {
    var now: Date
    var alarms: [(at: Date, action: @Sendable () -> Void)] = []
    var observers: [@Sendable (Date) -> Void] = []
  }
  private let state: Mutex<State>

  public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { state = Mutex(State(now: start)) }

  public var now: Date { state.withLock { $0.now } }

  /// Moves the clock on, then tells the observers (a fake scheduler catching up) and runs
  /// the alarms that came due, in time order.
  public func sleep(_ seconds: TimeInterval) {
    let (now, due, observers) = state.withLock { state in
      state.now = state.now.addingTimeInterval(max(seconds, 0))
      let now = state.now
      let due = state.alarms.filter { $0.at <= now }.sorted { $0.at < $1.at }.map(\.action)
      state.alarms.removeAll { $0.at <= now }
      return (now, due, state.observers)
    }
    for observer in observers { observer(now) }
    for action in due { action() }
  }

  /// Runs `action` at the first sleep that reaches `offset` seconds from now.
  public func at(_ offset: TimeInterval, _ action: @escaping @Sendable () -> Void) {
    state.withLock { $0.alarms.append((at: $0.now.addingTimeInterval(offset), action: action)) }
  }

  public func observe(_ observer: @escaping @Sendable (Date) -> Void) {
    state.withLock { $0.observers.append(observer) }
  }
}
