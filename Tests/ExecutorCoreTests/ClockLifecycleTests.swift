import ExecutorCore
import ExecutorTesting
import Foundation
import TestSizes
import Testing

/// Slurm's clock inside GitLab's, in process: the fake scheduler enforces a lowered limit
/// as Slurm does (TIMEOUT, `terminated 143`), on the manual clock.
@Suite(.tags(.medium)) struct ClockLifecycleTests {
  func clockedJob(timeout: Int, variables: [String: String] = [:]) -> LifecycleJob {
    var job = LifecycleJob()
    job.timeoutSeconds = timeout
    job.startedAt = job.clock.now
    job.variables = variables
    return job
  }

  @Test func aJobThatQueuedIsLoweredAtItsStartAndEndsAsATimeoutBeforeGitLabsKill() throws {
    let job = clockedJob(timeout: 1200)
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(pendSeconds: 300, runSeconds: 5000, output: "started\n") }
    #expect(try job.run(fake) == .build(exitCode: 124, message: "Fake job 1 hit its time limit of 00:13:00"))
    // Submitted with what was left less the drain margin (1140 s: 19 minutes), and a
    // deadline at which Slurm drops it if it still pends (a minute is all it needs).
    #expect(fake.submitted.first?.request.value(of: "time") == "19")
    #expect(fake.submitted.first?.request.value(of: "deadline") == "now+\(1140 - 60 + 30 + 1140)")
    // Seen started just after 300 s of queue: under 840 s are left before the margin, 13 whole minutes.
    #expect(fake.calls.filter { $0.hasPrefix("lowerTimeLimit") } == ["lowerTimeLimit 1 13"])
    #expect(job.console.notes.contains(
      "Lowered Fake job 1's time limit to 13 min, to end before GitLab stops this CI job (the CI job's timeout of 1200 s)"))
    #expect(job.console.output == "started\n")
    // It ended by Slurm's hand within the CI job's time, the margin kept for the end.
    #expect(job.clock.now.timeIntervalSince(job.startedAt!) < 1200 - 30)
  }

  @Test func anArraysTasksAreLoweredOneByOneAsEachIsSeenRunning() throws {
    let job = clockedJob(timeout: 1200, variables: ["SCHEDULER_PARAMETERS": "--array=0-1"])
    defer { job.remove() }
    // Task 1 starts 5 minutes after task 0: each gets what is left when it starts.
    let fake = FakeScheduler(clock: job.clock) { task in FakeTask(pendSeconds: task == 0 ? 60 : 360, runSeconds: 5000) }
    #expect(try job.run(fake)?.isBuildFailure == true)
    let lowered = fake.calls.filter { $0.hasPrefix("lowerTimeLimit") }
    #expect(lowered.count == 2, "\(lowered)")
    #expect(lowered.first?.hasPrefix("lowerTimeLimit 1_0 ") == true)
    #expect(lowered.last?.hasPrefix("lowerTimeLimit 1_1 ") == true)
    #expect(job.clock.now.timeIntervalSince(job.startedAt!) < 1200 - 30)
  }

  @Test func aJobStillPendingWhenItsTimeCannotFitIsCancelledAsTheCIJobsTimeout() throws {
    let job = clockedJob(timeout: 1200, variables: ["SCHEDULER_PARAMETERS": "--time=10"])
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(pendSeconds: 100_000, runSeconds: 10) }
    #expect(try job.run(fake) == .build(
      exitCode: 124,
      message: "Fake job 1 never started: GitLab would stop this CI job (the CI job's timeout of 1200 s) before it could run its 10m0s; a timeout, as GitLab would report it"))
    #expect(fake.calls.contains("cancel 1"))
    // Only the scheduler's own fresh word that the job still pends cancels it, not a shared
    // answer the account's other jobs could have written.
    let cancel = try #require(fake.calls.firstIndex(of: "cancel 1"))
    #expect(fake.calls[..<cancel].last { $0.hasPrefix("snapshot") } == "snapshot fresh", "\(fake.calls)")
    #expect(!fake.calls.contains { $0.hasPrefix("lowerTimeLimit") })
    #expect(job.console.notes.contains {
      $0.hasPrefix("Cancelling Fake job 1: still waiting in the queue, and the 10m0s left before GitLab stops this CI job")
    })
    // 1140 s before the margin, 600 s needed: cancelled once past 540 s, not later.
    let cancelledAfter = job.clock.now.timeIntervalSince(job.startedAt!)
    #expect(cancelledAfter > 540 && cancelledAfter < 600)
    #expect(try job.state().submissions.map(\.finished) == [true])
  }

  @Test func runnerScriptTimeoutShortensTheClockAndCIJobTimeoutCannotLengthenIt() throws {
    let job = clockedJob(timeout: 3600, variables: ["RUNNER_SCRIPT_TIMEOUT": "10m", "CI_JOB_TIMEOUT": "99999999"])
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 5) }
    #expect(try job.run(fake) == nil)
    #expect(fake.submitted.first?.request.value(of: "time") == "9")
    #expect(try job.state().scriptStartedAt == job.startedAt!.timeIntervalSince1970)
  }

  @Test(arguments: [1e300, -1e300])
  func aRewrittenScriptStartInTheStateFileNeitherCrashesNorStretchesTheClock(scriptStartedAt: Double) throws {
    let job = clockedJob(timeout: 3600, variables: ["RUNNER_SCRIPT_TIMEOUT": "10m"])
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 5) }
    try job.prepare(fake)
    var state = try job.state()
    state.scriptStartedAt = scriptStartedAt
    try state.save(try job.context().stateFile)
    #expect(try job.run(fake) == nil)
    #expect(fake.submitted.first?.request.value(of: "time") == "9")
  }

  @Test func aHostileVariableIsOneLineAndTheJobRunsOnThePayloadsClock() throws {
    let job = clockedJob(timeout: 3600, variables: ["RUNNER_SCRIPT_TIMEOUT": "$(reboot)", "CI_JOB_TIMEOUT": "forever"])
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 5) }
    #expect(try job.run(fake) == nil)
    #expect(fake.submitted.first?.request.value(of: "time") == "59")
    #expect(job.console.notes.contains("CI_JOB_TIMEOUT is 'forever', not a number of seconds; the driver ignores it"))
    #expect(job.console.notes.contains(
      "RUNNER_SCRIPT_TIMEOUT is '$(reboot)', not a duration (write e.g. 30m or 1h30m); the driver ignores it, as gitlab-runner does"))
  }

  @Test func withoutThePayloadsWritingTheClockRunsFromPrepare() throws {
    var job = clockedJob(timeout: 3600)
    job.startedAt = nil
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 5) }
    try job.prepare(fake)
    job.clock.sleep(1800)
    #expect(try job.run(fake) == nil)
    #expect(fake.submitted.first?.request.value(of: "time") == "29")
  }

  @Test func lessThanAMinuteLeftSubmitsNothing() throws {
    let job = clockedJob(timeout: 100)
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 5) }
    let failure = try job.run(fake)
    #expect(failure?.isBuildFailure == true)
    if case .build(let code, let message)? = failure {
      #expect(code == 124)
      #expect(message?.hasPrefix("Not submitted: 100 s are left of this CI job (the CI job's timeout of 100 s)") == true)
    }
    #expect(!fake.calls.contains("submit"))
    #expect(try job.state().submissions.isEmpty)
  }
}
