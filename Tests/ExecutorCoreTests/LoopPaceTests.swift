import ExecutorCore
import ExecutorTesting
import Foundation
import Synchronization
import TestSizes
import Testing

/// The output loop's pace: quick while the job shows signs of life, slow once it is quiet.
@Suite(.tags(.small)) struct LoopPaceTests {
  let start = Date(timeIntervalSince1970: 1_000)

  @Test func quickWhileActiveAndTenSecondsAfterThenBackingOffToTheSlowPace() {
    var pace = LoopPace(fast: 0.1, slow: 1, start: start)
    var now: TimeInterval = 0
    var sleeps: [TimeInterval] = []
    while now < 30 {
      let pause = pace.next(active: now == 0, now: start.addingTimeInterval(now))
      sleeps.append(pause)
      now += pause
    }
    // A tenth of a second for the first 10 s, then 0.15, 0.225, ... up to 1 s.
    #expect(sleeps.prefix(100).allSatisfy { $0 == 0.1 })
    #expect(sleeps.dropFirst(100).prefix(6).map { ($0 * 1000).rounded() } == [150, 225, 338, 506, 759, 1000])
    #expect(sleeps.suffix(10).allSatisfy { $0 == 1 })
    // Activity brings the quick pace back at once.
    #expect(pace.next(active: true, now: start.addingTimeInterval(now)) == 0.1)
  }

  @Test func aSlowPaceBelowTheFastOneIsTheFastOne() {
    var pace = LoopPace(fast: 0.5, slow: 0.1, start: start)
    #expect(pace.next(active: false, now: start.addingTimeInterval(60)) == 0.5)
  }
}

/// The pace in a whole run phase, against the fake scheduler on the manual clock.
@Suite(.tags(.small)) struct LoopPaceLifecycleTests {
  @Test func aSilentTwoMinuteJobIsLookedAtAFourthAsOftenAndItsEndSeenWithinASecond() throws {
    var job = LifecycleJob()
    job.idlePollMilliseconds = DriverSettings(dataRoot: "/").idlePollMilliseconds
    defer { job.remove() }
    let looks = Mutex(0)
    job.clock.observe { _ in looks.withLock { $0 += 1 } }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 120, output: "") }
    let submitted = job.clock.now
    #expect(try job.run(fake) == nil)
    let returned = job.clock.now.timeIntervalSince(submitted)
    // Every 0.1 s this was 1,200 looks; now 100 in the 10 s after the submission and 100
    // after the start, about one a second between, and quick again once the status is read.
    #expect(looks.withLock { $0 } < 300, "\(looks.withLock { $0 }) looks")
    #expect(returned >= 120 && returned <= 121.2, "returned \(returned) s after the submission")
  }
}
