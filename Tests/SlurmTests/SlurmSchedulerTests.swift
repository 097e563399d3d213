import ChildProcesses
import Foundation
import Scheduling
import Slurm
import TestSizes
import Testing
import SbatchModel

/// Replays recorded answers per command; records what was run.
final class ScriptedCommandRunner: CommandRunner, @unchecked Sendable {
  private let lock = NSLock()
  private var answers: [(prefix: [String], result: CommandResult)]
  private(set) var commands: [Command] = []

  init(_ answers: [(prefix: [String], result: CommandResult)]) { self.answers = answers }

  func run(_ command: Command) throws -> CommandResult {
    lock.lock()
    defer { lock.unlock() }
    commands.append(command)
    guard let index = answers.firstIndex(where: { Array(command.arguments.prefix($0.prefix.count)) == $0.prefix }) else {
      return CommandResult(status: .exited(1), stdout: "", stderr: "unscripted: \(command)")
    }
    // One-shot answers are used in order; the last one for a prefix stays.
    let answer = answers[index]
    if answers.filter({ $0.prefix == answer.prefix }).count > 1 { answers.remove(at: index) }
    return answer.result
  }
}

func ok(_ stdout: String) -> CommandResult { CommandResult(status: .exited(0), stdout: stdout, stderr: "") }
func fail(_ stderr: String) -> CommandResult { CommandResult(status: .exited(1), stdout: "", stderr: stderr) }

final class LockedLines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func append(_ line: String) { lock.withLock { lines.append(line) } }
  var all: [String] { lock.withLock { lines } }
}

func quickRetry() -> RetryPolicy {
  var policy = RetryPolicy()
  policy.firstDelay = 0.01
  policy.maxDelay = 0.02
  policy.patience = 1
  policy.sleep = { _ in }
  return policy
}

let sampleJob = BatchJob(
  name: "ci-demo-7", wrapperScript: "/data/jobs/7/build_script-1/wrapper.sh", directory: "/data/jobs/7/build_script-1",
  workingDirectory: "/data/builds/7", request: JobRequest(options: [.init("cpus-per-task", "2")]),
  environment: ["PATH": "/usr/bin"])

@Suite(.tags(.medium)) struct SlurmSchedulerTests {
  @Test func sbatchArgvHasDriverOptionsThenUsersThenWrapper() {
    #expect(SlurmScheduler.sbatchArguments(for: sampleJob) == [
      "sbatch", "--parsable", "--job-name=ci-demo-7", "--output=/data/jobs/7/build_script-1/output.log",
      "--chdir=/data/builds/7", "--export=ALL", "--no-requeue", "--cpus-per-task=2",
      "/data/jobs/7/build_script-1/wrapper.sh",
    ])
  }

  @Test func submitRetriesATransientErrorThenSucceeds() throws {
    let runner = ScriptedCommandRunner([
      (["sbatch"], fail("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)")),
      (["squeue"], ok("")),
      (["sbatch"], ok("42\n")),
    ])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect(try scheduler.submit(sampleJob) == JobID("42"))
    #expect(runner.commands.map { $0.arguments[0] } == ["sbatch", "squeue", "sbatch"])
    // The sbatch child gets the job's sanitised environment, nothing else.
    #expect(runner.commands[0].environment == ["PATH": "/usr/bin"])
  }

  @Test func aTimedOutSubmissionThatReachedSlurmIsAdoptedNotDuplicated() throws {
    let runner = ScriptedCommandRunner([
      (["sbatch"], fail("sbatch: error: slurm_receive_msg: Socket timed out on send/recv operation")),
      (["squeue"], ok("77\n")),
    ])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect(try scheduler.submit(sampleJob) == JobID("77"))
    #expect(runner.commands.filter { $0.arguments[0] == "sbatch" }.count == 1)
  }

  @Test func anUnknownPartitionIsTheUsersMistakeWithSlurmsReason() throws {
    let runner = ScriptedCommandRunner([(["sbatch"], fail(try fixture("sbatch/invalid-partition.txt")))])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect(throws: SchedulerError(.requestRefused, "Slurm refused the job: Invalid partition name specified (invalid partition specified: nosuch)")) {
      try scheduler.submit(sampleJob)
    }
  }

  @Test func aSignalledSbatchMaySubmitAndIsLookedUpByName() throws {
    // The runner's SIGTERM (or anything else) killed sbatch after slurmctld took the job.
    let runner = ScriptedCommandRunner([
      (["sbatch"], CommandResult(status: .signaled(15), stdout: "", stderr: "")),
      (["squeue"], ok("88\n")),
    ])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect(try scheduler.submit(sampleJob) == JobID("88"))
    let lookup = try #require(runner.commands.last)
    #expect(lookup.arguments == ["squeue", "-h", "--me", "--name=ci-demo-7", "-t", "all", "-o", "%F"])
  }

  @Test func aLostAnswerSlurmCannotExplainIsNeverARefusal() {
    // sbatch said nothing and squeue cannot answer either: the job may exist, so this is
    // "unavailable" (ci-run keeps the submission for cleanup), never "refused".
    let runner = ScriptedCommandRunner([
      (["sbatch"], CommandResult(status: .exited(1), stdout: "", stderr: "")),
      (["squeue"], fail("squeue: error: Unable to contact slurm controller (connect failure)")),
    ])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect { try scheduler.submit(sampleJob) } throws: { ($0 as? SchedulerError)?.code == .unavailable }
  }

  @Test func aFullQueueIsWaitedOutWithOneLinePerWait() throws {
    let runner = ScriptedCommandRunner([
      (["sbatch"], fail(try fixture("sbatch/qos-submit-limit.txt"))),
      (["sbatch"], ok("99\n")),
      (["sacctmgr", "-n", "-P", "show", "assoc"], ok("|\n")),
      (["sacctmgr", "-n", "-P", "show", "qos"], ok("normal|1\n")),
      (["squeue", "-h", "--me", "-r", "-o", "%q"], ok("normal\n")),
    ])
    let lines = LockedLines()
    var retry = quickRetry()
    retry.queueFirstDelay = 30
    retry.note = { lines.append($0) }
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: retry)
    #expect(try scheduler.submit(sampleJob) == JobID("99"))
    #expect(lines.all == ["queue full for this user (QOS normal: 1 job), retrying in 30 s"])
  }

  @Test func aCancelEndsTheWaitForAFullQueueAtOnce() throws {
    let runner = ScriptedCommandRunner([
      (["sbatch"], fail(try fixture("sbatch/max-job-count.txt"))),
    ])
    let slept = LockedLines()
    var retry = quickRetry()
    retry.queueFirstDelay = 3600
    retry.queuePatience = 7200
    retry.sleep = { _ in slept.append("slept") }
    retry.isCancelled = { slept.all.count >= 3 }
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: retry)
    #expect(throws: SchedulerError(.cancelled, "the CI job was stopped before Slurm accepted its job")) { try scheduler.submit(sampleJob) }
    #expect(slept.all.count == 3)  // three 0.2 s steps of an hour's wait
  }

  @Test func anAccountingRefusalWithRoomInTheQueueIsTheUsersSizeOrTimeLimit() throws {
    let runner = ScriptedCommandRunner([
      (["sbatch"], fail(try fixture("sbatch/qos-submit-limit.txt"))),
      (["sacctmgr", "-n", "-P", "show", "assoc"], ok("|\n")),
      (["sacctmgr", "-n", "-P", "show", "qos"], ok("normal|5\n")),
      (["squeue", "-h", "--me", "-r", "-o", "%q"], ok("normal\n")),
    ])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect { try scheduler.submit(sampleJob) } throws: { ($0 as? SchedulerError)?.code == .requestRefused }
  }

  @Test func controllerAwayTooLongIsUnavailable() {
    let runner = ScriptedCommandRunner([(["scontrol"], fail("scontrol: error: Unable to contact slurm controller (connect failure)"))])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect {
      try scheduler.checkAvailable()
    } throws: { error in
      (error as? SchedulerError)?.code == .unavailable
    }
  }

  @Test func pingUpIsAvailable() throws {
    let runner = ScriptedCommandRunner([(["scontrol", "ping"], ok(try fixture("scontrol/ping-up.txt")))])
    try SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()).checkAvailable()
  }

  @Test func pollingAsksAccountingFirstAndCostsSlurmctldNothing() throws {
    let runner = ScriptedCommandRunner([(["sacct"], ok(try fixture("sacct/poll-array-running-pending.txt")))])
    let snapshot = try SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()).snapshot(of: JobID("180"))
    #expect(snapshot.tasks == [0: .running, 1: .running, 2: .pending(reason: "None"), 3: .pending(reason: "None"), 4: .pending(reason: "None")])
    #expect(snapshot.pendingRest == "2-4%2 (None)")
    #expect(runner.commands.map { $0.arguments[0] } == ["sacct"])
  }

  @Test func aJobAccountingDoesNotListYetFallsBackToSqueue() throws {
    let runner = ScriptedCommandRunner([
      (["sacct"], ok("")),
      (["squeue"], ok(try fixture("squeue/array-running-pending.txt"))),
    ])
    let snapshot = try SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()).snapshot(of: JobID("2"))
    #expect(snapshot.tasks[5] == .pending(reason: "JobArrayTaskLimit"))
    #expect(!snapshot.unknown)
  }

  @Test func unknownJobSnapshotAndFinalStatesFromAccounting() throws {
    let runner = ScriptedCommandRunner([
      (["sacct", "-n"], fail("sacct: error: Problem talking to the database")),
      (["squeue"], fail(try fixture("squeue/unknown-job.txt"))),
      (["sacct", "-P"], ok(try fixture("sacct/array-and-cancelled-with-steps.txt"))),
    ])
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: quickRetry())
    #expect(try scheduler.snapshot(of: JobID("2")).unknown)
    let ends = try scheduler.finalStates(of: JobID("2"), in: "/tmp")
    #expect(ends[3]?.exitCode == 4)
    #expect(ends[3]?.kind == .failed)
    #expect(!runner.commands.contains { $0.arguments[0] == "scontrol" })
  }

  @Test func unsettledAccountingFallsBackToScontrol() throws {
    let runner = ScriptedCommandRunner([
      (["sacct", "-P"], ok("5|5|RUNNING|0:0|00:01:00|vm\n")),
      (["scontrol", "show"], ok(try fixture("scontrol/timeout.txt"))),
    ])
    let ends = try SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()).finalStates(of: JobID("5"), in: "/tmp")
    #expect(ends[0]?.kind == .timeout)
    #expect(ends[0]?.timeLimit == "00:01:00")
  }

  @Test func cancellingAFinishedJobIsFine() throws {
    let runner = ScriptedCommandRunner([(["scancel"], fail("scancel: error: Kill job error on job id 5: Job/step already completing or completed"))])
    try SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()).cancel(JobID("5"))
  }

  @Test func aStoppedJobEndsTheWaitForAnAbsentControllerAtOnce() {
    let runner = ScriptedCommandRunner([(["scontrol"], fail("scontrol: error: Unable to contact slurm controller (connect failure)"))])
    let slept = LockedLines()
    var retry = quickRetry()
    retry.firstDelay = 60
    retry.patience = 3600
    retry.sleep = { _ in slept.append("slept") }
    retry.isCancelled = { slept.all.count >= 2 }
    let scheduler = SlurmScheduler(runner: runner, environment: [:], retry: retry)
    #expect(throws: SchedulerError(.cancelled, "the CI job was stopped while Slurm did not answer scontrol")) {
      try scheduler.checkAvailable()
    }
    #expect(slept.all.count == 2)  // two 0.2 s steps of a minute's wait
    #expect(runner.commands.count == 1)
  }

  @Test func aStoppedJobsScancelKeepsTryingAnAbsentController() throws {
    let runner = ScriptedCommandRunner([
      (["scancel"], fail("scancel: error: Unable to contact slurm controller (connect failure)")),
      (["scancel"], ok("")),
    ])
    var retry = quickRetry()
    retry.isCancelled = { true }
    try SlurmScheduler(runner: runner, environment: [:], retry: retry).cancel(JobID("5"))
    #expect(runner.commands.count == 2)
  }

  @Test func aFreshLookAsksTheControllerFirst() throws {
    let runner = ScriptedCommandRunner([
      (["squeue"], ok(try fixture("squeue/array-running-pending.txt"))),
      (["sacct"], ok(try fixture("sacct/poll-array-running-pending.txt"))),
    ])
    let snapshot = try SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()).snapshot(of: JobID("2"), fresh: true)
    #expect(snapshot.tasks[5] == .pending(reason: "JobArrayTaskLimit"))
    #expect(runner.commands.map { $0.arguments[0] } == ["squeue"])
  }
}
