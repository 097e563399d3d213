import ExecutorCore
import Foundation
import Scheduling
import TestSizes
import Testing

/// The watch alone: observations in, actions out, no files and no clock.
@Suite(.tags(.small)) struct JobWatchTests {
  let start = Date(timeIntervalSince1970: 1_000)

  func watch(tasks: [Int] = [0], isArray: Bool = false) -> JobWatch {
    JobWatch(
      id: JobID("5"), schedulerName: "Slurm", tasks: tasks, isArray: isArray, submittedAt: start,
      timing: .init(pollSeconds: 10, heartbeatSeconds: 30, cancelWaitSeconds: 20))
  }

  func seen(_ seconds: TimeInterval, _ change: (inout JobWatch.Observation) -> Void = { _ in }) -> JobWatch.Observation {
    var observation = JobWatch.Observation(now: start.addingTimeInterval(seconds))
    change(&observation)
    return observation
  }

  @Test func aStatusAloneNeverEndsTheJobTheSchedulerMustSaySo() {
    var watch = watch()
    #expect(watch.step(seen(1) { $0.statuses = [0: .exited(0)] }) == [.poll(fresh: true)])
    // Slurm still lists it running: keep watching, and keep reading the status.
    #expect(watch.step(seen(1.01) { $0.snapshot = .success(JobSnapshot(tasks: [0: .running])) }).isEmpty)
    #expect(watch.tasksToRead == [0])
    #expect(!watch.isFinished)
  }

  @Test func theEndIsConfirmedQuicklyThenLessOften() {
    var watch = watch()
    #expect(watch.step(seen(0) { $0.statuses = [0: .exited(0)] }) == [.poll(fresh: true)])
    var polls: [TimeInterval] = [0]
    for step in 1...500 {
      let now = Double(step) / 100
      if watch.step(seen(now)).contains(.poll(fresh: true)) { polls.append(now) }
    }
    // 0.1, 0.2, 0.4, 0.8 s apart, then every second: an end is seen within a tenth of a
    // second of a quick job, and a forged status costs a query a second.
    let gaps = zip(polls.dropFirst(), polls).map { $0 - $1 }
    let expected: [TimeInterval] = [0.1, 0.2, 0.4, 0.8, 1, 1]
    #expect(gaps.count >= expected.count)
    for (gap, wanted) in zip(gaps, expected) { #expect(abs(gap - wanted) < 0.015) }
    #expect(gaps.dropFirst(4).allSatisfy { abs($0 - 1) < 0.015 })
  }

  @Test func anEndedJobIsReadToItsEndBeforeTheVerdict() {
    var watch = watch()
    _ = watch.step(seen(0) { $0.statuses = [0: .exited(2)] })
    // Slurm's word that it ended: the status is read once more, now final.
    #expect(watch.step(seen(0.1) { $0.snapshot = .success(JobSnapshot(tasks: [0: .ended])) }).isEmpty)
    #expect(watch.tasksToRead == [0])
    let actions = watch.step(seen(0.2) { $0.statuses = [0: .exited(2)] })
    #expect(actions.first == .drainToEnd)
    #expect(actions.last == .finish(verdict: .build(exitCode: 2, message: nil), ended: true))
    #expect(watch.isFinished)
  }

  @Test func aTaskThatEndedWithoutItsStatusIsAskedUntilSettled() {
    var watch = watch()
    _ = watch.step(seen(0) { $0.snapshot = .success(JobSnapshot(tasks: [0: .ended])) })
    // The status file's grace second, then the end states.
    #expect(watch.step(seen(0.5)).isEmpty)
    #expect(watch.step(seen(1.1)) == [.drainToEnd, .askEnds])
    let completing = TaskEnds(byTask: [0: TaskEnd(kind: .other("COMPLETING"))])
    #expect(watch.step(seen(1.2) { $0.ends = .success(completing) }).isEmpty)
    #expect(watch.step(seen(2.3)) == [.askEnds])
    let timedOut = TaskEnds(byTask: [0: TaskEnd(kind: .timeout, timeLimit: "00:05:00")])
    let actions = watch.step(seen(2.4) { $0.ends = .success(timedOut) })
    #expect(actions.last == .finish(verdict: .build(exitCode: 124, message: "Slurm job 5 hit its time limit of 00:05:00"), ended: true))
  }

  @Test func aPendingJobsHeartbeatCarriesTheSchedulersReason() {
    var watch = watch()
    #expect(watch.step(seen(30)).contains(.askPendingReason))
    let actions = watch.step(seen(30.1) { $0.pendingReason = "QOSMaxJobsPerUserLimit" })
    #expect(actions.contains(.note("Job 5 is waiting in the queue (QOSMaxJobsPerUserLimit), 30s so far")))
  }

  @Test func aStopWhileEndStatesSettleEndsTheWaitAtOnce() {
    var watch = watch()
    _ = watch.step(seen(0) { $0.snapshot = .success(JobSnapshot(tasks: [0: .ended])) })
    #expect(watch.step(seen(1.1)) == [.drainToEnd, .askEnds])
    let completing = TaskEnds(byTask: [0: TaskEnd(kind: .other("COMPLETING"))])
    #expect(watch.step(seen(1.2) { $0.ends = .success(completing) }).isEmpty)
    let actions = watch.step(seen(1.3) { $0.cancelRequested = true })
    #expect(actions.last == .finish(verdict: .build(exitCode: 143, message: "Slurm job 5 was cancelled because the CI job was stopped"), ended: true))
  }

  /// After a cancel the end is due: the scheduler is asked each second, and asked `fresh`
  /// (past a shared status answer, which is up to a tick old).
  @Test func afterACancelThePollsAreFresh() {
    var watch = watch()
    _ = watch.step(seen(0) { $0.snapshot = .success(JobSnapshot(tasks: [0: .running])) })
    #expect(watch.step(seen(5) { $0.cancelRequested = true }).suffix(2) == [.cancel, .poll(fresh: true)])
    #expect(watch.step(seen(5.5)).isEmpty)
    #expect(watch.step(seen(6)) == [.poll(fresh: true)])
  }
}
