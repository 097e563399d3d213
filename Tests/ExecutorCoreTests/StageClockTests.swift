import CustomExecutorAPI
import ExecutorCore
import Foundation
import SbatchModel
import TestSizes
import Testing

/// GitLab's clock read from the runner's variables, and a request fitted inside it: pure.
@Suite(.tags(.small)) struct StageClockTests {
  @Test(arguments: [
    ("1h30m", 5400.0), ("1.5h", 5400), ("90s", 90), ("300ms", 0.3), ("0", 0), ("-5m", -300), ("+2s", 2), ("1h0.5m", 3630),
    (".5s", 0.5), ("2us", 0.000002), ("10µs", 0.00001),
  ])
  func goDurationsReadAsGoReadsThem(text: String, seconds: Double) {
    #expect(GoDuration.seconds(text).map { abs($0 - seconds) < 1e-9 } == true)
  }

  @Test(arguments: [
    "", "5", "5mo", "1h 30m", " 10m", "abc", ".s", "s", "1.h5", "99999999999999h", "--5m", "5m;", "1d",
    String(repeating: "1", count: 100) + "s",
  ])
  func anythingElseIsNoDuration(text: String) {
    #expect(GoDuration.seconds(text) == nil)
  }

  @Test func theRunnersReadingOfAStageVariable() {
    #expect(StageTimeouts.read(nil, jobLeft: 3600) == .unset)
    #expect(StageTimeouts.read("  ", jobLeft: 3600) == .unset)
    #expect(StageTimeouts.read("0s", jobLeft: 3600) == .unset)
    #expect(StageTimeouts.read("10m", jobLeft: 3600) == .seconds(600))
    #expect(StageTimeouts.read("-1m", jobLeft: 3600) == .negative)
    #expect(StageTimeouts.read("ten", jobLeft: 3600) == .malformed)
    #expect(StageTimeouts.read("2h", jobLeft: 3600) == .longerThanJob)
    #expect(StageTimeouts.runnerWarning(.malformed, name: "RUNNER_SCRIPT_TIMEOUT", text: "ten")
      == "Ignoring malformed RUNNER_SCRIPT_TIMEOUT timeout: ten")
  }

  let start = Date(timeIntervalSince1970: 1_800_000_000)

  func clock(
    _ stage: RunStage = .buildScript, timeout: Int? = 3600, variables: [String: String] = [:], elapsed: Double = 0,
    scriptElapsed: Double = 0
  ) -> (clock: StageClock?, notes: [String]) {
    let environment = RunnerEnvironment(Dictionary(uniqueKeysWithValues: variables.map { ("CUSTOM_ENV_" + $0.key, $0.value) }))
    let now = start.addingTimeInterval(elapsed)
    return StageClock.resolve(
      stage: stage, environment: environment, timeoutSeconds: timeout, jobStartedAt: start,
      scriptStartedAt: now.addingTimeInterval(-scriptElapsed), now: now, drainSeconds: 60)
  }

  @Test func theJobsTimeoutRunsFromTheJobsStart() {
    let (clock, notes) = clock(elapsed: 600)
    #expect(clock == StageClock(end: start.addingTimeInterval(3600), source: "the CI job's timeout of 3600 s", drainSeconds: 60))
    #expect(notes.isEmpty)
    #expect(clock?.limitMinutes(at: start.addingTimeInterval(600)) == 49)
    #expect(self.clock(timeout: nil).clock == nil)
  }

  @Test func runnerScriptTimeoutRunsFromTheFirstScriptStageAndOnlyShortens() {
    let (clock, _) = clock(variables: ["RUNNER_SCRIPT_TIMEOUT": "10m"], elapsed: 300, scriptElapsed: 120)
    #expect(clock?.end == start.addingTimeInterval(300 - 120 + 600))
    #expect(clock?.source == "RUNNER_SCRIPT_TIMEOUT=10m")
    // Longer than the job's: the job's clock stays, as the runner keeps it.
    #expect(self.clock(variables: ["RUNNER_SCRIPT_TIMEOUT": "5h"]).clock?.end == start.addingTimeInterval(3600))
    // Not a stage it governs.
    #expect(self.clock(.getSources, variables: ["RUNNER_SCRIPT_TIMEOUT": "1m"]).clock?.end == start.addingTimeInterval(3600))
  }

  @Test func afterScriptHasTheRunnersFiveMinutesUnlessItsVariableSaysLess() {
    #expect(clock(.afterScript, elapsed: 100).clock?.end == start.addingTimeInterval(400))
    #expect(clock(.afterScript, variables: ["RUNNER_AFTER_SCRIPT_TIMEOUT": "2m"], elapsed: 100).clock?.end == start.addingTimeInterval(220))
  }

  @Test func ciJobTimeoutCanLowerTheClockNeverRaiseIt() {
    #expect(clock(variables: ["CI_JOB_TIMEOUT": "600"]).clock?.end == start.addingTimeInterval(600))
    #expect(clock(variables: ["CI_JOB_TIMEOUT": "999999999"]).clock?.end == start.addingTimeInterval(3600))
    // No payload timeout: the variable alone.
    #expect(clock(timeout: nil, variables: ["CI_JOB_TIMEOUT": "900"]).clock?.source == "CI_JOB_TIMEOUT=900")
  }

  @Test(arguments: [
    ("CI_JOB_TIMEOUT", "1e9", "CI_JOB_TIMEOUT is '1e9', not a number of seconds; the driver ignores it"),
    ("CI_JOB_TIMEOUT", "-5", "CI_JOB_TIMEOUT is '-5', not a number of seconds; the driver ignores it"),
    ("CI_JOB_TIMEOUT", String(repeating: "9", count: 40), "CI_JOB_TIMEOUT is '\(String(repeating: "9", count: 40))', not a number of seconds; the driver ignores it"),
    ("RUNNER_SCRIPT_TIMEOUT", "1h; rm -rf /\u{1b}[2J", "RUNNER_SCRIPT_TIMEOUT is '1h; rm -rf /?[2J', not a duration (write e.g. 30m or 1h30m); the driver ignores it, as gitlab-runner does"),
    ("RUNNER_SCRIPT_TIMEOUT", "-10m", "RUNNER_SCRIPT_TIMEOUT is '-10m', a negative duration; the driver ignores it, as gitlab-runner does"),
  ])
  func hostileValuesAreOneLineAndChangeNothing(name: String, value: String, line: String) {
    let (clock, notes) = clock(variables: [name: value])
    #expect(notes == [line])
    #expect(clock?.end == start.addingTimeInterval(3600))
  }

  func fit(_ parameters: String, left: Double, policy: OptionPolicy = OptionPolicy()) throws -> StageClock.Fitted {
    let clock = StageClock(end: start.addingTimeInterval(left), source: "the CI job's timeout of 3600 s", drainSeconds: 60)
    let user = try JobRequest.parse(parameters)
    let request = try policy.request(defaults: JobRequest(), user: user, timeoutSeconds: 3600)
    return try clock.fit(request, asked: user, at: start)
  }

  @Test func withoutATimeTheJobGetsWhatIsLeftLessTheDrain() throws {
    let fitted = try fit("", left: 1000)
    // (1000 - 60) s is 15 whole minutes; Slurm drops it once under a minute is left.
    #expect(fitted.request.arguments == ["--time=15", "--deadline=now+\(1000 - 60 - 60 + 30 + 900)"])
    #expect(fitted.budget.neededSeconds == 60)
    #expect(fitted.budget.submittedMinutes == 15)
    #expect(fitted.note == nil)
  }

  @Test func aLongerTimeIsLoweredWithOneLine() throws {
    let fitted = try fit("--time=2:00:00", left: 1000)
    #expect(fitted.request.value(of: "time") == "15")
    #expect(fitted.note == "--time=2:00:00 is longer than this CI job has left (15m40s before GitLab stops it, the CI job's timeout of 3600 s); lowered to --time=15")
    #expect(fitted.budget.neededSeconds == 60)
  }

  @Test func aTimeThatFitsIsKeptAndIsWhatThePendingJobNeeds() throws {
    let fitted = try fit("--time=5", left: 1000)
    #expect(fitted.request.arguments == ["--time=5", "--deadline=now+\(1000 - 60 - 300 + 30 + 300)"])
    #expect(fitted.budget.neededSeconds == 300)
    #expect(fitted.budget.cannotFit(at: start.addingTimeInterval(1000 - 60 - 299)))
    #expect(!fitted.budget.cannotFit(at: start.addingTimeInterval(1000 - 60 - 300)))
  }

  @Test func aTimeMinIsWhatThePendingJobNeeds() throws {
    let fitted = try fit("--time=10 --time-min=2", left: 1000)
    #expect(fitted.request.arguments == ["--time=10", "--time-min=2", "--deadline=now+\(1000 - 60 + 30)"])
    #expect(fitted.budget.neededSeconds == 120)
  }

  @Test func theAdminsCapStaysOnTop() throws {
    var policy = OptionPolicy()
    policy.maxTimeSeconds = 300
    policy.maxMemoryMB = 1024
    let fitted = try fit("", left: 100_000, policy: policy)
    #expect(fitted.request.value(of: "time") == "5")
  }

  @Test func notEvenAMinuteLeftIsTheCIJobsTimeoutAndNothingIsSubmitted() {
    #expect(throws: DriverFailure.build(
      exitCode: 124,
      message: "Not submitted: 110 s are left of this CI job (the CI job's timeout of 3600 s), less than Slurm's one-minute limit plus the 60 s kept for the end (drain_margin_seconds)"
    )) { try fit("", left: 110) }
  }

  @Test func theLimitIsOnlyEverLowered() {
    let budget = StageClock.Budget(jobEnd: start.addingTimeInterval(600), neededSeconds: 60, submittedMinutes: 9, source: "x")
    #expect(budget.lowered(at: start) == nil)
    #expect(budget.lowered(at: start.addingTimeInterval(100)) == 8)
    #expect(budget.lowered(at: start.addingTimeInterval(599)) == 1)
  }
}
