import CustomExecutorAPI
import ExecutorCore
import ExecutorTesting
import Foundation
import SbatchModel
import Scheduling
import Synchronization
import TestSizes
import Testing

/// What a phase printed, in order: job output as `out:` lines, driver notes as `note:`.
final class CapturedConsole: Sendable {
  private let lines = Mutex<[String]>([])
  private let bytes = Mutex(Data())
  var console: DriverConsole {
    DriverConsole(
      output: { data in self.bytes.withLock { $0.append(data) } },
      note: { text in self.lines.withLock { $0.append(text) } })
  }
  var notes: [String] { lines.withLock { $0 } }
  var output: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
}

/// One CI job's phases in process: a temporary data root, the fake scheduler on a manual
/// clock, a captured console.
struct LifecycleJob {
  let root = NSTemporaryDirectory() + "lifecycle-" + UUID().uuidString
  let clock = ManualClock()
  let console = CapturedConsole()
  let cancellation = CancellationFlag()
  var variables: [String: String] = [:]
  var partialArrayExitCode = DriverSettings(dataRoot: "/").partialArrayExitCode
  var outputLimitBytes = DriverSettings(dataRoot: "/").outputLimitBytes
  var slurmJobURL = ""
  var afterScript = DriverSettings(dataRoot: "/").afterScript
  /// The quiet job's pace: the quick one, so the other tests' times are exact to the tenth
  /// of a second (LoopPaceLifecycleTests sets the default).
  var idlePollMilliseconds = 100.0
  /// The payload's timeout, and when the runner wrote the payload (nil: no payload).
  var timeoutSeconds: Int?
  var startedAt: Date?

  func context() throws -> JobContext {
    var values = ["CUSTOM_ENV_CI_JOB_ID": "7", "CUSTOM_ENV_CI_PROJECT_PATH_SLUG": "demo"]
    for (key, value) in variables { values["CUSTOM_ENV_" + key] = value }
    var settings = DriverSettings(dataRoot: root)
    settings.heartbeatSeconds = 30
    settings.pollSeconds = 10
    settings.partialArrayExitCode = partialArrayExitCode
    settings.outputLimitBytes = outputLimitBytes
    settings.slurmJobURL = slurmJobURL
    settings.afterScript = afterScript
    settings.idlePollMilliseconds = idlePollMilliseconds
    return JobContext(environment: RunnerEnvironment(values), settings: settings, trusted: TrustedJob(jobID: "7", timeoutSeconds: timeoutSeconds, startedAt: startedAt))
  }

  func prepare(_ scheduler: FakeScheduler) throws {
    try PreparePhase(context: try context(), scheduler: scheduler, console: console.console, clock: clock).run()
  }

  /// The build_script stage; the thrown failure, or nil when the job succeeded.
  func run(_ scheduler: FakeScheduler, script: String = "echo hi\n", stage: String = "build_script") throws -> DriverFailure? {
    let phase = RunPhase(
      context: try context(), scheduler: scheduler, console: console.console, cancellation: cancellation, clock: clock)
    do {
      try phase.run(script: Data(script.utf8), stageName: stage)
      return nil
    } catch let failure as DriverFailure {
      return failure
    }
  }

  func cleanup(_ scheduler: FakeScheduler) throws {
    CleanupPhase(context: try context(), scheduler: scheduler, console: console.console).run()
  }

  func state() throws -> JobState { JobState.load(try context().stateFile) }

  /// Sets CI_PROJECT_DIR where the runner puts it, inside the builds directory; returns it.
  mutating func checkout() throws -> String {
    let project = try context().buildsDirectory + "/group/demo"
    variables["CI_PROJECT_DIR"] = project
    return project
  }

  func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite(.tags(.medium)) struct LifecycleTests {
  @Test func pendingThenRunningThenEndedStreamsTheOutputAndSucceeds() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(pendSeconds: 45, runSeconds: 20, output: "hello\nLAST") }
    try job.prepare(fake)
    #expect(try job.run(fake) == nil)
    #expect(job.console.output == "hello\nLAST")
    #expect(job.console.notes.contains { $0.hasPrefix("Job 1 is waiting in the queue (Priority), 30s so far") })
    // The last line had no newline: the driver's note starts a line of its own.
    #expect(job.console.notes.last == "\nFake job 1 ended: queued about 45s, ran about 20s")
    #expect(try job.state().submissions.map(\.finished) == [true])
    // While the job ran its end was confirmed with a fresh look, not a 10 s poll later.
    #expect(fake.calls.contains("snapshot fresh"))
    try job.cleanup(fake)
    #expect(try fake.liveJobs(named: job.context().schedulerJobName).isEmpty)
  }

  @Test func aFailingScriptIsABuildFailureWithItsExitCode() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 3, output: "boom\n", ending: .exit(3)) }
    #expect(try job.run(fake) == .build(exitCode: 3, message: nil))
  }

  @Test func aCancelWhilePendingCancelsTheJobAndNamesTheStop() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(pendSeconds: 600, runSeconds: 10) }
    let cancellation = job.cancellation
    job.clock.at(12) { cancellation.set() }
    #expect(try job.run(fake) == .build(exitCode: 143, message: "Fake job 1 was cancelled because the CI job was stopped"))
    #expect(fake.calls.contains("cancel 1"))
    #expect(job.console.notes.contains("Cancelling Fake job 1: the runner stopped this CI job (cancelled or timed out)"))
    #expect(job.console.output.isEmpty)
    #expect(try job.state().submissions.map(\.finished) == [true])
  }

  @Test func aJobThatIgnoresItsCancelStaysOnCleanupsList() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    // The forged status and a scancel that does not take: the job lives on in the scheduler.
    let fake = FakeScheduler(clock: job.clock, away: 11..<1000) { _ in FakeTask(runSeconds: 5, ending: .hangs) }
    let cancellation = job.cancellation
    job.clock.at(12) { cancellation.set() }
    #expect(try job.run(fake)?.isBuildFailure == true)
    #expect(job.console.notes.contains { $0.hasPrefix("Could not cancel job 1:") })
    #expect(job.console.notes.contains("Job 1 did not end within 20 s of the cancel; ci-cleanup will cancel it again"))
    #expect(try job.state().submissions.map(\.finished) == [false])
  }

  @Test func aNodeFailureIsASystemFailureAndTheJobIsCancelled() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in
      FakeTask(runSeconds: 30, output: "working\n", ending: .killed(TaskEnd(kind: .nodeFailure, nodes: "n3")))
    }
    #expect(try job.run(fake) == .system("Fake job 1 did not finish: its node failed (n3)"))
    #expect(fake.calls.contains("finalStates"))
    #expect(fake.calls.last == "cancel 1")
    #expect(job.console.output == "working\n")
  }

  @Test func theControllerAwayForAMinuteIsWaitedOut() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock, away: 5..<65) { _ in FakeTask(runSeconds: 120, output: "done\n") }
    #expect(try job.run(fake) == nil)
    let notes = job.console.notes
    let away = try #require(notes.firstIndex { $0.hasPrefix("Fake is not answering (the fake controller is away)") })
    let back = try #require(notes.firstIndex(of: "Fake answers again"))
    #expect(away < back)
    #expect(notes.filter { $0.hasPrefix("Fake is not answering") }.count == 1)
  }

  @Test func anArrayWithOneFailedTaskFailsNamingIt() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--array=0-3"
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { task in
      FakeTask(pendSeconds: Double(task) * 20, runSeconds: 5, output: "task \(task)\n", ending: .exit(task == 2 ? 4 : 0))
    }
    let failure = try job.run(fake)
    // Partly failed: the partial code (75 by default), which allow_failure can accept.
    #expect(failure == .build(exitCode: 75, message: "Fake job 1: 1 of 4 tasks failed: 2 (exit 4) (partly failed: exit 75)"))
    for task in 0..<4 { #expect(job.console.output.contains("[task \(task)] task \(task)\n")) }
    #expect(job.console.notes.contains { $0.hasPrefix("Summary of Fake job 1: 4 tasks, 3 succeeded, 1 did not") })
  }

  @Test func anArrayIsOverOnlyWhenItsLastPendingTaskEnded() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--array=0-9%2"
    defer { job.remove() }
    // Task 9 waits long after the others ended (the throttle's pending rest).
    let fake = FakeScheduler(clock: job.clock) { task in
      FakeTask(pendSeconds: task == 9 ? 300 : 0, runSeconds: 2, output: "task \(task)\n")
    }
    #expect(try job.run(fake) == nil)
    #expect(job.console.output.contains("[task 9] task 9\n"))
  }

  @Test func aForgedStatusFileDoesNotEndAJobTheSchedulerStillRuns() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 5, ending: .writesStatusAndRunsOn(0)) }
    let cancellation = job.cancellation
    job.clock.at(900) { cancellation.set() }
    // Green would have come at 5 s; the job is followed until the runner stops it.
    #expect(try job.run(fake) == .build(exitCode: 143, message: "Fake job 1 was cancelled because the CI job was stopped"))
    #expect(job.clock.now.timeIntervalSince1970 >= 1_800_000_900)
  }

  @Test func prepareRefusesBadOptionsAsTheUsersMistake() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--cpus-per-task=abc"
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask() }
    #expect { try job.prepare(fake) } throws: { ($0 as? DriverFailure)?.isBuildFailure == true }
    #expect(!fake.calls.contains("checkAvailable"))
  }

  @Test func prepareWithTheSchedulerAwayIsASystemFailure() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock, away: 0..<100) { _ in FakeTask() }
    #expect(throws: DriverFailure.system("the fake controller is away")) { try job.prepare(fake) }
  }

  @Test func cleanupCancelsWhatARunLeftAndAsksWhatIsLeft() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 10_000, ending: .hangs) }
    try job.prepare(fake)
    // A run killed mid-job: its submission was recorded, never marked finished.
    let context = try job.context()
    let batch = BatchJob(
      name: context.schedulerJobName, wrapperScript: "/bin/true", directory: context.jobDirectory,
      workingDirectory: context.buildsDirectory, request: JobRequest(), environment: [:])
    let id = try fake.submit(batch)
    var state = JobState()
    state.submissions.append(.init(stage: "build_script", name: batch.name, id: id, finished: false))
    try state.save(context.stateFile)
    try job.cleanup(fake)
    #expect(fake.calls.suffix(3) == ["cancel 1", "cancel named ci-demo-7", "liveJobs"])
    #expect(try fake.liveJobs(named: batch.name).isEmpty)
    #expect(!FileManager.default.fileExists(atPath: context.jobDirectory))
  }
}

extension DriverFailure {
  var isBuildFailure: Bool { if case .build = self { return true } else { return false } }
}

/// The log's GitLab sections as the run phase writes them (the markers' bytes are
/// LogSectionsTests').
@Suite(.tags(.medium)) struct LogSectionLifecycleTests {
  static func isStart(_ line: String, _ name: String) -> Bool { line.contains("section_start:") && line.contains(":\(name)") }
  static func isEnd(_ line: String, _ name: String) -> Bool { line.contains("section_end:") && line.hasSuffix(":\(name)\r\u{1b}[0K") }

  @Test func aPlainJobIsReproducerQueuedOutputSummary() throws {
    let job = LifecycleJob()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in
      FakeTask(pendSeconds: 45, runSeconds: 20, output: "hello\n", usage: TaskUsage(elapsed: "00:00:20", maxRSS: "900K", node: "n1"))
    }
    #expect(try job.run(fake) == nil)
    let notes = job.console.notes
    let reproducer = try #require(notes.firstIndex { Self.isStart($0, "fake_1_reproduce[collapsed=true]") })
    let queued = try #require(notes.firstIndex { Self.isStart($0, "fake_1_queued") })
    let waiting = try #require(notes.firstIndex { $0.hasPrefix("Job 1 is waiting in the queue (Priority)") })
    let queuedEnd = try #require(notes.firstIndex { Self.isEnd($0, "fake_1_queued") })
    let summary = try #require(notes.firstIndex { Self.isStart($0, "fake_1_summary[collapsed=true]") })
    #expect(reproducer < queued && queued < waiting && waiting < queuedEnd && queuedEnd < summary)
    #expect(notes[queued + 1].hasPrefix("Submitted Fake job 1 (ci-demo-7) for build_script"))
    #expect(notes[queuedEnd - 1] == "Job 1 waited 45s in the queue")
    #expect(notes[summary + 2] == "  task 0: COMPLETED, exit 0, elapsed 00:00:20, MaxRSS 900K, node n1")
    #expect(Self.isEnd(notes[summary + 3], "fake_1_summary"))
    #expect(notes.last == "Fake job 1 ended: queued about 45s, ran about 20s")
    // The job's own bytes are untouched: the markers are driver lines.
    #expect(job.console.output == "hello\n")
  }

  @Test func theReproducerIsTheSbatchLineAndNeverASecret() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--mem=2G --comment='my run'"
    job.variables["CI_JOB_TOKEN"] = "glcbt-SECRET-TOKEN"
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 2, output: "ok\n") }
    // The runner's stage script exports the job's variables, the token among them.
    #expect(try job.run(fake, script: "export CI_JOB_TOKEN='glcbt-SECRET-TOKEN'\necho ok\n") == nil)
    let notes = job.console.notes
    let submitted = try #require(notes.first { $0.hasPrefix("Submitted with: sbatch --parsable --job-name=ci-demo-7 ") })
    let batch = try #require(fake.submitted.first)
    #expect(submitted.hasSuffix(" --no-requeue --mem=2G '--comment=my run' \(batch.wrapperScript)"))
    #expect(notes.contains("Resubmit on the cluster: cd \(batch.workingDirectory) && " + submitted.dropFirst("Submitted with: ".count)))
    #expect(notes.contains("Batch script: \(batch.wrapperScript)"))
    #expect(notes.contains { $0.hasPrefix("CI script it runs: \(batch.directory)/") })
    #expect(!(notes.joined() + job.console.output).contains("SECRET"))
    // The summary names the memory asked for.
    #expect(notes.contains("  task 0: COMPLETED, exit 0, elapsed -, MaxRSS - of 2G requested, node -"))
  }

  @Test func eachArrayTaskIsOneSectionFoldedUnlessItFailed() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--array=0-3"
    defer { job.remove() }
    // The tasks run at once and end in an order of their own: 3, 1, 2, 0.
    let ends: [Int: Double] = [0: 40, 1: 20, 2: 30, 3: 10]
    let fake = FakeScheduler(clock: job.clock) { task in
      FakeTask(runSeconds: ends[task]!, output: "first of \(task)\nsecond of \(task)\nno newline \(task)", ending: .exit(task == 2 ? 5 : 0))
    }
    #expect(try job.run(fake) == .build(exitCode: 75, message: "Fake job 1: 1 of 4 tasks failed: 2 (exit 5) (partly failed: exit 75)"))
    let lines = job.console.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines.last == "")
    var sections: [String] = []
    var index = 0
    while index < lines.count - 1 {
      let start = lines[index]
      let task = try #require(Int(String(start.split(separator: "_task_").last!.prefix { $0.isNumber })), "\(start)")
      sections.append(start)
      #expect(Self.isStart(start, task == 2 ? "fake_1_task_2\r" : "fake_1_task_\(task)[collapsed=true]"))
      #expect(Array(lines[index + 1...index + 3]) == ["[task \(task)] first of \(task)", "[task \(task)] second of \(task)", "[task \(task)] no newline \(task)"])
      #expect(Self.isEnd(lines[index + 4], "fake_1_task_\(task)"))
      index += 5
    }
    // In the order the tasks ended, each once.
    #expect(sections.map { $0.contains("task_3") ? 3 : $0.contains("task_1") ? 1 : $0.contains("task_2") ? 2 : 0 } == [3, 1, 2, 0])
    let notes = job.console.notes
    let summary = try #require(notes.firstIndex { Self.isStart($0, "fake_1_summary\r") })
    #expect(notes[summary + 1] == "Summary of Fake job 1: 4 tasks, 3 succeeded, 1 did not")
    #expect(notes[summary + 4] == "  task 2: FAILED, exit 5, elapsed -, MaxRSS -, node -")
  }

  @Test func aWhollyFailedArrayIsTheBuildFailureAndTheSettingCanTurnThePartialCodeOff() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--array=0-1"
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 2, ending: .exit(6)) }
    #expect(try job.run(fake) == .build(exitCode: 6, message: "Fake job 1: 2 of 2 tasks failed: 0 (exit 6), 1 (exit 6)"))

    var off = LifecycleJob()
    off.variables["SCHEDULER_PARAMETERS"] = "--array=0-1"
    off.partialArrayExitCode = 0
    defer { off.remove() }
    let partly = FakeScheduler(clock: off.clock) { task in FakeTask(runSeconds: 2, ending: .exit(task == 0 ? 0 : 6)) }
    #expect(try off.run(partly) == .build(exitCode: 6, message: "Fake job 1: 1 of 2 tasks failed: 1 (exit 6)"))
  }
}

@Suite(.tags(.medium)) struct JUnitLifecycleTests {
  static let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/junit-gitlab.xsd").path

  /// xmllint's verdict on `file` against the JUnit schema GitLab's parser reads.
  static func validate(_ file: String) throws -> (valid: Bool, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["xmllint", "--noout", "--schema", schema, file]
    let pipe = Pipe()
    process.standardError = pipe
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus == 0, output)
  }

  @Test func anArrayWritesAReportGitLabsSchemaAccepts() throws {
    var job = LifecycleJob()
    job.variables["SCHEDULER_PARAMETERS"] = "--array=0-2"
    job.variables["CI_JOB_NAME"] = "analyze"
    let project = try job.checkout()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { task in
      FakeTask(
        runSeconds: 3, output: "task \(task)\n\u{1b}[31m<error> & more\u{1b}[0m\n", ending: .exit(task == 1 ? 3 : 0),
        usage: TaskUsage(elapsed: "00:00:03"))
    }
    _ = try job.run(fake)
    let file = "\(project)/.ci-slurm/junit.xml"
    let xml = try String(contentsOfFile: file, encoding: .utf8)
    #expect(xml.components(separatedBy: "<testcase ").count == 4)
    #expect(xml.contains("<testcase name=\"task 1\" classname=\"analyze (Fake job 1)\" time=\"3\">"))
    #expect(xml.contains("exit code 3; the output ends:\ntask 1\n[31m&lt;error&gt; &amp; more[0m</failure>"))
    let verdict = try Self.validate(file)
    #expect(verdict.valid, "\(verdict.output)")
  }

  /// An after_script run on the scheduler is a second Slurm job of the same CI job: it
  /// replaced the script's complete log and JUnit report, losing a failed job's output.
  @Test func anAfterScriptOnTheSchedulerKeepsTheScriptsLogAndReport() throws {
    var job = LifecycleJob()
    job.variables["CI_JOB_NAME"] = "convert"
    job.afterScript = .scheduler
    let project = try job.checkout()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in
      FakeTask(runSeconds: 3, output: "the script's output\n", ending: .exit(2))
    }
    _ = try job.run(fake)
    let fakeAfter = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 1, output: "after\n") }
    _ = try job.run(fakeAfter, stage: "after_script")
    #expect(try String(contentsOfFile: "\(project)/.ci-slurm/logs/convert/job.log", encoding: .utf8) == "the script's output\n")
    #expect(try String(contentsOfFile: "\(project)/.ci-slurm/logs/convert/after_script.log", encoding: .utf8) == "after\n")
    #expect(try String(contentsOfFile: "\(project)/.ci-slurm/junit.xml", encoding: .utf8).contains("exit code 2"))
  }

  @Test func theSchemaCheckCanFail() throws {
    let file = NSTemporaryDirectory() + "junit-" + UUID().uuidString + ".xml"
    try "<testsuites><testsuite name=\"s\"><testcase name=\"t\"/></testsuite></testsuites>".write(toFile: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: file) }
    #expect(try !Self.validate(file).valid)
  }

  @Test func aProjectDirectoryOutsideTheBuildsIsNotWritten() throws {
    var job = LifecycleJob()
    let outside = NSTemporaryDirectory() + "outside-" + UUID().uuidString
    job.variables["CI_PROJECT_DIR"] = outside
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 1) }
    #expect(try job.run(fake) == nil)
    #expect(!FileManager.default.fileExists(atPath: outside))
  }
}

/// Past output_limit: one note naming the artifact, a bounded tail per task, the sections
/// and the summary still there, and the complete logs byte for byte under the project.
@Suite(.tags(.medium)) struct OutputLimitLifecycleTests {
  static func numbered(_ count: Int, _ tag: String) -> String { (1...count).map { "\(tag) line \($0)\n" }.joined() }

  static func notes(_ job: LifecycleJob) -> [String] { job.console.notes.filter { $0.contains("output_limit") } }

  @Test func aPlainJobPastTheLimitIsCutAtALineThenItsTailAndTheCompleteLogIsKept() throws {
    var job = LifecycleJob()
    job.outputLimitBytes = 64 << 10
    job.variables["CI_JOB_NAME"] = "big job"
    let project = try job.checkout()
    defer { job.remove() }
    let printed = Self.numbered(20000, "plain")
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 2, output: printed) }
    #expect(try job.run(fake) == nil)
    let notes = Self.notes(job)
    #expect(notes == [
      "The log reached the runner's output_limit (64 KiB): the complete output is in this job's artifacts, .ci-slurm/logs/big_job/ (job.log); from here on each task shows only its last 20 lines, at its end"
    ])
    let output = job.console.output
    // Streamed up to the limit less its reserve, cut at a line's end; then the tail.
    let (streamed, tail) = try #require(output.split(separator: "Last 20 lines of the job's output (complete: .ci-slurm/logs/big_job/job.log)\n").map(String.init).asPair)
    #expect(streamed.utf8.count <= 48 << 10 && streamed.utf8.count > 47 << 10)
    #expect(printed.hasPrefix(streamed) && streamed.hasSuffix("\n"))
    #expect(tail == (19981...20000).map { "plain line \($0)\n" }.joined())
    #expect(output.utf8.count < 64 << 10)
    // The summary still comes, and the artifact is what the job printed.
    #expect(job.console.notes.contains { $0.contains("section_start:") && $0.contains("_summary") })
    #expect(try Data(contentsOf: URL(fileURLWithPath: "\(project)/.ci-slurm/logs/big_job/job.log")) == Data(printed.utf8))
  }

  @Test func anArrayPastTheLimitShowsEachLaterTaskAsItsTailInItsSection() throws {
    var job = LifecycleJob()
    job.outputLimitBytes = 64 << 10
    job.variables["SCHEDULER_PARAMETERS"] = "--array=0-2"
    job.variables["CI_JOB_NAME"] = "scatter"
    let project = try job.checkout()
    defer { job.remove() }
    // Task 0 ends first and fits; task 1 passes the limit; task 2 shows only its tail.
    let outputs = [0: Self.numbered(10, "t0"), 1: Self.numbered(10000, "t1"), 2: Self.numbered(5000, "t2")]
    let fake = FakeScheduler(clock: job.clock) { task in FakeTask(runSeconds: Double(10 * (task + 1)), output: outputs[task]!) }
    #expect(try job.run(fake) == nil)
    #expect(Self.notes(job).count == 1)
    #expect(Self.notes(job).first?.contains(".ci-slurm/logs/scatter/ (task-N.log for array task N)") == true)
    let lines = job.console.output.split(separator: "\n").map(String.init)
    #expect(lines.filter { $0.hasPrefix("[task 0] ") }.count == 10)
    // Task 1: its first lines, then its tail, inside its section.
    let start1 = try #require(lines.firstIndex { $0.contains("section_start:") && $0.contains("_task_1") })
    let end1 = try #require(lines.firstIndex { $0.contains("section_end:") && $0.contains("_task_1") })
    let header1 = try #require(lines.firstIndex(of: "Last 20 lines of task 1's output (complete: .ci-slurm/logs/scatter/task-1.log)"))
    #expect(start1 < header1 && header1 < end1)
    #expect(lines[start1 + 1] == "[task 1] t1 line 1")
    #expect(Array(lines[header1 + 1..<end1]) == (9981...10000).map { "[task 1] t1 line \($0)" })
    // Task 2: only its tail.
    let start2 = try #require(lines.firstIndex { $0.contains("section_start:") && $0.contains("_task_2") })
    #expect(lines[start2 + 1] == "Last 20 lines of task 2's output (complete: .ci-slurm/logs/scatter/task-2.log)")
    #expect(Array(lines[start2 + 2..<start2 + 22]) == (4981...5000).map { "[task 2] t2 line \($0)" })
    #expect(lines[start2 + 22].contains("section_end:"))
    for (task, printed) in outputs {
      #expect(try Data(contentsOf: URL(fileURLWithPath: "\(project)/.ci-slurm/logs/scatter/task-\(task).log")) == Data(printed.utf8))
    }
  }

  @Test func underTheLimitNothingChangesButTheLogIsStillKept() throws {
    var job = LifecycleJob()
    job.variables["CI_JOB_NAME"] = "small"
    let project = try job.checkout()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 1, output: "hello\n") }
    #expect(try job.run(fake) == nil)
    #expect(Self.notes(job).isEmpty)
    #expect(job.console.output == "hello\n")
    #expect(try String(contentsOfFile: "\(project)/.ci-slurm/logs/small/job.log", encoding: .utf8) == "hello\n")
  }

  /// The attack: the checkout holds `.ci-slurm` as a symlink to a directory outside it (a
  /// repository can commit one). Nothing may be written through it.
  @Test func aSymlinkPlantedInTheCheckoutIsNotWrittenThrough() throws {
    var job = LifecycleJob()
    let project = try job.checkout()
    defer { job.remove() }
    let elsewhere = job.root + "/elsewhere"
    try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: "\(project)/.ci-slurm", withDestinationPath: elsewhere)
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 1, output: "hello\n") }
    #expect(try job.run(fake) == nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
    #expect(job.console.notes.contains { $0.hasPrefix("Could not write the JUnit report: ") })
    #expect(job.console.notes.contains { $0.hasPrefix("Could not keep the complete log of the job: ") })
  }
}

@Suite(.tags(.medium)) struct AnnotationsLifecycleTests {
  @Test func theSlurmJobIsLinkedFromTheSettingsTemplateAndThePublishedReportFromPages() throws {
    var job = LifecycleJob()
    job.slurmJobURL = "https://portal.example/jobs/{id}"
    job.variables["CI_PAGES_URL"] = "https://group.pages.example/demo"
    let project = try job.checkout()
    defer { job.remove() }
    // What ci-worker publish writes.
    try FileManager.default.createDirectory(atPath: "\(project)/public", withIntermediateDirectories: true)
    try "<html/>".write(toFile: "\(project)/public/index.html", atomically: true, encoding: .utf8)
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 1) }
    #expect(try job.run(fake) == nil)
    let json = try String(contentsOfFile: "\(project)/.ci-slurm/annotations.json", encoding: .utf8)
    #expect(json == #"{"Fake":[{"external_link":{"label":"Fake job 1","url":"https://portal.example/jobs/1"}}],"Report":[{"external_link":{"label":"Published report","url":"https://group.pages.example/demo"}}]}"# + "\n")
  }

  @Test func withoutATemplateOrAReportTheFileIsAnEmptyReport() throws {
    var job = LifecycleJob()
    job.variables["CI_PAGES_URL"] = "https://group.pages.example/demo"
    let project = try job.checkout()
    defer { job.remove() }
    let fake = FakeScheduler(clock: job.clock) { _ in FakeTask(runSeconds: 1) }
    #expect(try job.run(fake) == nil)
    #expect(try String(contentsOfFile: "\(project)/.ci-slurm/annotations.json", encoding: .utf8) == "{}\n")
  }
}

extension Array {
  /// The two elements of a two-element array.
  var asPair: (Element, Element)? { count == 2 ? (self[0], self[1]) : nil }
}
