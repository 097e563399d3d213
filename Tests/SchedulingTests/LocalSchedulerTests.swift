import ChildProcesses
import Foundation
import Scheduling
import TestSizes
import Testing
import SbatchModel

@Suite(.tags(.large)) struct LocalSchedulerTests {
  func job(_ script: String, options: String = "") throws -> BatchJob {
    let directory = try makeTemporaryDirectory()
    try script.write(toFile: "\(directory)/script.sh", atomically: true, encoding: .utf8)
    try WrapperScript.render(stageScript: "\(directory)/script.sh", directory: directory)
      .write(toFile: "\(directory)/wrapper.sh", atomically: true, encoding: .utf8)
    return BatchJob(
      name: "ci-test-1", wrapperScript: "\(directory)/wrapper.sh", directory: directory, workingDirectory: directory,
      request: try JobRequest.parse(options), environment: ["PATH": "/usr/bin:/bin"])
  }

  func waitUntilGone(_ scheduler: LocalScheduler, _ id: JobID) throws {
    for _ in 0..<200 {
      if try scheduler.snapshot(of: id).unknown { return }
      Thread.sleep(forTimeInterval: 0.05)
    }
    Issue.record("local job \(id) did not end")
  }

  @Test func arrayTasksRunWithTheirIDsAndStatuses() throws {
    let scheduler = LocalScheduler()
    let batch = try job("echo \"task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT\"; exit $SLURM_ARRAY_TASK_ID\n", options: "--array=0-2%2 -c 3")
    let id = try scheduler.submit(batch)
    try waitUntilGone(scheduler, id)
    for task in 0...2 {
      let output = try String(contentsOfFile: JobFiles.output(in: batch.directory, task: task, isArray: true), encoding: .utf8)
      #expect(output == "task \(task) of 3\n")
      let status = try String(contentsOfFile: JobFiles.status(in: batch.directory, task: task, isArray: true), encoding: .utf8)
      #expect(WrapperScript.parseStatus(status) == .exited(Int32(task)))
    }
  }

  @Test func timeLimitIsEnforcedAndReported() throws {
    let scheduler = LocalScheduler()
    // 1 minute is the smallest Slurm limit; the local backend takes seconds from --time=0:02.
    let batch = try job("sleep 30\n", options: "-t 0:02")
    let id = try scheduler.submit(batch)
    try waitUntilGone(scheduler, id)
    let ends = try scheduler.finalStates(of: id, in: batch.directory)
    #expect(ends[0]?.kind == .timeout)
  }

  @Test func cancelEndsTheWholeSession() throws {
    let scheduler = LocalScheduler()
    let batch = try job("sleep 60 & sleep 60\n")
    let id = try scheduler.submit(batch)
    Thread.sleep(forTimeInterval: 0.3)
    #expect(try !scheduler.snapshot(of: id).unknown)
    try scheduler.cancel(id)
    try waitUntilGone(scheduler, id)
    let pid = Int32(id.raw.dropFirst(6))!
    #expect(ProcessTable.all().filter { $0.session == pid && $0.state != "Z" }.isEmpty)
  }
}

@Suite(.tags(.large)) struct ChildProcessTests {
  @Test func capturesBothStreamsAndStatus() throws {
    let result = try ProcessCommandRunner().run(
      Command(["bash", "-c", "echo out; echo err >&2; exit 7"], environment: ["PATH": "/usr/bin:/bin"]))
    #expect(result == CommandResult(status: .exited(7), stdout: "out\n", stderr: "err\n"))
  }

  @Test func aHungCommandIsKilledAtItsTimeout() throws {
    let result = try ProcessCommandRunner().run(Command(["sleep", "30"], environment: ["PATH": "/usr/bin:/bin"], timeout: 0.3))
    #expect(result.status == .signaled(9))
  }

  @Test func missingExecutableIsAClearError() {
    #expect(throws: SpawnError.self) { try ChildProcess(arguments: ["no-such-command-xyz"], environment: ["PATH": "/usr/bin"]) }
  }

  @Test func statParsingCopesWithParenthesesInNames() {
    let entry = ProcessTable.parseStat("123 (a (b) c) S 1 123 123 0 -1")
    #expect(entry?.pid == 123)
    #expect(entry?.state == "S")
    #expect(entry?.session == 123)
  }
}
