import ExecutorCore
import Foundation
import Scheduling
import SbatchModel
import TestSizes
import Testing

@Suite(.tags(.small)) struct LogSectionsTests {
  let time = Date(timeIntervalSince1970: 1_700_000_000.7)

  @Test func markersAreGitLabsBytes() {
    // As gitlab-runner's helpers/trace writes them, and GitLab's "custom collapsible
    // sections" documents: erase-line, the marker, CR, erase-line, the title.
    #expect(LogSection.start("slurm_5_queued", title: "Slurm: queued", at: time, collapsed: false)
      == "\u{1b}[0Ksection_start:1700000000:slurm_5_queued\r\u{1b}[0KSlurm: queued")
    #expect(LogSection.start("slurm_5_task_2", title: "t", at: time, collapsed: true)
      == "\u{1b}[0Ksection_start:1700000000:slurm_5_task_2[collapsed=true]\r\u{1b}[0Kt")
    #expect(LogSection.end("slurm_5_task_2", at: time) == "\u{1b}[0Ksection_end:1700000000:slurm_5_task_2\r\u{1b}[0K")
    #expect(LogSection.sectionName("Slurm job 12;rm") == "Slurm_job_12_rm")
  }

  @Test func submissionOpensAFoldedReproducerThenQueued() {
    var sections = JobSections(id: JobID("42"), scheduler: "Slurm")
    let reproducer = JobSections.Reproducer(
      command: ["sbatch", "--parsable", "--job-name=ci-demo-7", "--comment=a b", "/j/wrapper.sh"],
      stagedScript: "/j/script.sh", wrapper: "/j/wrapper.sh", workingDirectory: "/b/7")
    let lines = sections.submitted(at: time, line: "Submitted Slurm job 42 (ci-demo-7) for build_script: -n 1", reproducer: reproducer)
    #expect(lines == [
      "\u{1b}[0Ksection_start:1700000000:slurm_42_reproduce[collapsed=true]\r\u{1b}[0KSlurm: reproduce job 42 by hand",
      "Submitted with: sbatch --parsable --job-name=ci-demo-7 '--comment=a b' /j/wrapper.sh",
      "Resubmit on the cluster: cd /b/7 && sbatch --parsable --job-name=ci-demo-7 '--comment=a b' /j/wrapper.sh",
      "Batch script: /j/wrapper.sh",
      "CI script it runs: /j/script.sh (holds the job's CI variables; kept only with keep_job_dirs)",
      "\u{1b}[0Ksection_end:1700000000:slurm_42_reproduce\r\u{1b}[0K",
      "\u{1b}[0Ksection_start:1700000000:slurm_42_queued\r\u{1b}[0KSlurm: queued",
      "Submitted Slurm job 42 (ci-demo-7) for build_script: -n 1",
    ])
    #expect(sections.queuedOpen)
    #expect(sections.started(at: time.addingTimeInterval(75), queued: 75) == [
      "Job 42 waited 1m15s in the queue", "\u{1b}[0Ksection_end:1700000075:slurm_42_queued\r\u{1b}[0K",
    ])
    // Closed once only.
    #expect(sections.started(at: time, queued: 1).isEmpty)
  }

  @Test func aTaskSectionIsFoldedOnlyWhenItSucceeded() {
    let sections = JobSections(id: JobID("42"), scheduler: "Slurm")
    #expect(sections.task(3, status: .exited(0), at: time).start.hasSuffix("slurm_42_task_3[collapsed=true]\r\u{1b}[0KSlurm: task 3 (exit 0)"))
    #expect(sections.task(3, status: .exited(2), at: time).start.hasSuffix("slurm_42_task_3\r\u{1b}[0KSlurm: task 3 (exit 2)"))
    #expect(sections.task(3, status: .terminated(143), at: time).start.hasSuffix("slurm_42_task_3\r\u{1b}[0KSlurm: task 3 (terminated (143))"))
    #expect(sections.task(3, status: nil, at: time).start.hasSuffix("slurm_42_task_3\r\u{1b}[0KSlurm: task 3 (no exit status)"))
    #expect(sections.task(3, status: nil, at: time).end == "\u{1b}[0Ksection_end:1700000000:slurm_42_task_3\r\u{1b}[0K")
  }

  @Test func theSummaryListsEachTasksUseAndIsOpenOnAFailure() {
    let sections = JobSections(id: JobID("42"), scheduler: "Slurm")
    let rows = [
      JobSections.Row(task: 1, outcome: .outOfMemory, usage: TaskUsage(elapsed: "00:00:09", maxRSS: "2040M", node: "n2")),
      JobSections.Row(task: 0, outcome: .succeeded, usage: TaskUsage(elapsed: "00:01:02", maxRSS: "1234K", node: "n1")),
      JobSections.Row(task: 2, outcome: .failed(exitCode: 3), usage: nil),
    ]
    let lines = sections.summary(headline: "Summary of Slurm job 42: 3 tasks, 1 succeeded, 2 did not", rows: rows, requestedMemory: "2G", at: time)
    #expect(lines == [
      "\u{1b}[0Ksection_start:1700000000:slurm_42_summary\r\u{1b}[0KSlurm: summary",
      "Summary of Slurm job 42: 3 tasks, 1 succeeded, 2 did not",
      "  task 0: COMPLETED, exit 0, elapsed 00:01:02, MaxRSS 1234K of 2G requested, node n1",
      "  task 1: OUT_OF_MEMORY, exit 137, elapsed 00:00:09, MaxRSS 2040M of 2G requested, node n2",
      "  task 2: FAILED, exit 3, elapsed -, MaxRSS - of 2G requested, node -",
      "\u{1b}[0Ksection_end:1700000000:slurm_42_summary\r\u{1b}[0K",
    ])
    let succeeded = sections.summary(
      headline: "h", rows: [JobSections.Row(task: 0, outcome: .succeeded, usage: nil)], requestedMemory: nil, at: time)
    #expect(succeeded[0].hasSuffix("slurm_42_summary[collapsed=true]\r\u{1b}[0KSlurm: summary"))
    #expect(succeeded[2] == "  task 0: COMPLETED, exit 0, elapsed -, MaxRSS -, node -")
  }

  @Test func aPartlyFailedArrayGetsThePartialCodeAWhollyFailedOneTheBuildFailure() {
    let id = JobID("123")
    let partly: [Int: TaskOutcome] = [0: .succeeded, 1: .failed(exitCode: 4), 2: .timedOut(limit: nil)]
    #expect(JobVerdict.decide(jobID: id, outcomes: partly, isArray: true, partialExitCode: 75)
      == .build(exitCode: 75, message: "Slurm job 123: 2 of 3 tasks failed: 1 (exit 4), 2 (time limit) (partly failed: exit 75)"))
    let wholly: [Int: TaskOutcome] = [0: .failed(exitCode: 4), 1: .failed(exitCode: 9)]
    #expect(JobVerdict.decide(jobID: id, outcomes: wholly, isArray: true, partialExitCode: 75)
      == .build(exitCode: 4, message: "Slurm job 123: 2 of 2 tasks failed: 0 (exit 4), 1 (exit 9)"))
    // A task lost to the cluster stays a system failure (the runner may retry).
    #expect(JobVerdict.decide(jobID: id, outcomes: [0: .succeeded, 1: .infrastructure("its node failed")], isArray: true, partialExitCode: 75)
      == .system("Slurm job 123: 1 of 2 tasks did not succeed: 1 (its node failed)"))
  }

  @Test func thePartialCodeIsASettingWithADocumentedDefault() throws {
    #expect(try DriverSettings.parse("", origin: "s.toml", defaultDataRoot: "/x").partialArrayExitCode == 75)
    #expect(try DriverSettings.parse("partial_array_exit_code = 3", origin: "s.toml", defaultDataRoot: "/x").partialArrayExitCode == 3)
    #expect(throws: DriverSettings.Error(message: "s.toml:1: 'partial_array_exit_code' must be a whole number from 0 to 255")) {
      try DriverSettings.parse("partial_array_exit_code = 2.5", origin: "s.toml", defaultDataRoot: "/x")
    }
    #expect(throws: DriverSettings.Error(message: "s.toml:1: 'partial_array_exit_code' must be between 0.0 and 255.0")) {
      try DriverSettings.parse("partial_array_exit_code = 300", origin: "s.toml", defaultDataRoot: "/x")
    }
  }
}

@Suite(.tags(.small)) struct JUnitReportTests {
  @Test func oneCasePerTaskAFailureWithItsCodeAndEscapedTail() {
    let xml = JUnitReport.render(
      jobName: "analyze: [a&b]", id: JobID("9"), scheduler: "Slurm", isArray: true,
      cases: [
        .init(task: 1, outcome: .failed(exitCode: 3), seconds: 4, tail: "bad <tag> & \"q\" 'a'\n\u{1b}[31mred\u{1b}[0m\u{7}"),
        .init(task: 0, outcome: .succeeded, seconds: 62, tail: ""),
      ])
    #expect(xml == """
      <?xml version="1.0" encoding="UTF-8"?>
      <testsuites>
        <testsuite name="analyze: [a&amp;b] (Slurm job 9)" tests="2" failures="1" errors="0" time="66">
          <testcase name="task 0" classname="analyze: [a&amp;b] (Slurm job 9)" time="62"/>
          <testcase name="task 1" classname="analyze: [a&amp;b] (Slurm job 9)" time="4">
            <failure message="exit code 3" type="FAILED">exit code 3; the output ends:
      bad &lt;tag&gt; &amp; &quot;q&quot; &apos;a&apos;
      [31mred[0m</failure>
          </testcase>
        </testsuite>
      </testsuites>

      """)
  }

  @Test func aPlainJobIsOneCaseNamedAfterTheCIJob() {
    let xml = JUnitReport.render(
      jobName: "build", id: JobID("9"), scheduler: "Slurm", isArray: false,
      cases: [.init(task: 0, outcome: .timedOut(limit: "00:01:00"), seconds: nil, tail: "")])
    #expect(xml.contains("<testcase name=\"build\" classname=\"build (Slurm job 9)\">"))
    #expect(xml.contains("<failure message=\"exit code 124\" type=\"TIMEOUT\">exit code 124</failure>"))
  }

  @Test func theTailIsTheLastLinesOfTheLastBytes() {
    let text = (1...100).map { "line \($0)" }.joined(separator: "\n") + "\n"
    #expect(JUnitReport.tail(of: Data(text.utf8)) == (81...100).map { "line \($0)" }.joined(separator: "\n"))
    #expect(JUnitReport.seconds(elapsed: "1-00:01:02") == 86462)
    #expect(JUnitReport.seconds(elapsed: nil) == nil)
  }
}

@Suite(.tags(.small)) struct LogBudgetTests {
  @Test func streamingStopsAQuarterBeforeTheLimitAndStaysStopped() {
    var budget = LogBudget(limit: 64 << 10)
    #expect(budget.reserve == 16 << 10)
    #expect(budget.admit(40 << 10) == 40 << 10)
    #expect(!budget.exceeded)
    #expect(budget.admit(10 << 10) == 8 << 10)
    #expect(budget.exceeded)
    #expect(budget.admit(1) == 0)
    // A 4 MiB limit keeps 256 KiB back, not a quarter.
    #expect(LogBudget(limit: 4 << 20).reserve == 256 << 10)
  }

  @Test func tailsFitUntilOnlyTheSummarysRoomIsLeft() {
    var budget = LogBudget(limit: 64 << 10)
    budget.count(58 << 10)
    #expect(budget.tailFits(2 << 10))
    #expect(!budget.tailFits(3 << 10))
    #expect(LogBudget.describe(4 << 20) == "4 MiB" && LogBudget.describe(64 << 10) == "64 KiB" && LogBudget.describe(70000) == "70000 bytes")
  }

  @Test func theLimitAndTheJobURLAreSettingsWithOneLineErrors() throws {
    #expect(DriverSettings(dataRoot: "/").outputLimitBytes == 4 << 20)
    #expect(try DriverSettings.parse("output_limit = \"4096K\"", origin: "s.toml", defaultDataRoot: "/x").outputLimitBytes == 4 << 20)
    #expect(throws: DriverSettings.Error(message: "s.toml:1: 'output_limit' must be a size of at least 64K such as \"4M\" (the runner's output_limit, which is in kilobytes: 4096 is \"4096K\")")) {
      try DriverSettings.parse("output_limit = \"4MB\"", origin: "s.toml", defaultDataRoot: "/x")
    }
    let url = "https://portal.example/jobs/{id}"
    #expect(try DriverSettings.parse("slurm_job_url = \"\(url)\"", origin: "s.toml", defaultDataRoot: "/x").slurmJobURL == url)
    #expect(throws: DriverSettings.Error(message: "s.toml:1: 'slurm_job_url' must be an http(s) URL with {id} where the Slurm job id goes, e.g. \"https://portal.example/jobs/{id}\"")) {
      try DriverSettings.parse("slurm_job_url = \"https://portal.example/jobs\"", origin: "s.toml", defaultDataRoot: "/x")
    }
  }
}

@Suite(.tags(.small)) struct AnnotationsTests {
  @Test func aLinkPerSlurmJobAndThePublishedReportInGitLabsFormat() {
    let links = Annotations.links(scheduler: "Slurm", jobIDs: ["4711", "4712"], jobURL: "https://p.example/j/{id}", pagesURL: "https://g.pages.example/p")
    #expect(Annotations.render(links) == #"""
      {"Report":[{"external_link":{"label":"Published report","url":"https://g.pages.example/p"}}],"Slurm":[{"external_link":{"label":"Slurm job 4711","url":"https://p.example/j/4711"}},{"external_link":{"label":"Slurm job 4712","url":"https://p.example/j/4712"}}]}

      """#)
  }

  @Test func noTemplateNoJobLinks() {
    #expect(Annotations.links(scheduler: "Slurm", jobIDs: ["1"], jobURL: "", pagesURL: nil).isEmpty)
    // The user's own values: an id out of a rewritten state file, a script URL in CI_PAGES_URL.
    let hostile = Annotations.links(
      scheduler: "Slurm", jobIDs: ["1/../../x", "..", "12_3", "local-812"], jobURL: "https://p.example/j/{id}", pagesURL: "javascript:alert(1)")
    #expect(hostile == ["Slurm": [
      Annotations.Link(label: "Slurm job 12_3", url: "https://p.example/j/12_3"),
      Annotations.Link(label: "Slurm job local-812", url: "https://p.example/j/local-812"),
    ]])
    #expect(Annotations.render([:]) == "{}\n")
  }

  @Test func aCompleteLogsPathIsOneComponentPerJob() {
    #expect(JobLayout.completeLog(ciJobName: "analyze: [alpha, 2]", task: 3, isArray: true) == ".ci-slurm/logs/analyze___alpha__2_/task-3.log")
    #expect(JobLayout.completeLog(ciJobName: "..", task: 0, isArray: false) == ".ci-slurm/logs/__/job.log")
    #expect(JobLayout.completeLog(ciJobName: "../../etc", task: 0, isArray: false) == ".ci-slurm/logs/.._.._etc/job.log")
  }
}
