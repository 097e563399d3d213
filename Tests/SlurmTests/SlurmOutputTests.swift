import Foundation
import Scheduling
import Slurm
import TestSizes
import Testing

/// Recorded output of Slurm 22.05 commands (Tests/SlurmTests/Fixtures, captured from the
/// local cluster that scripts/slurm-local starts).
func fixture(_ path: String) throws -> String {
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
  return try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
}

@Suite(.tags(.medium)) struct SbatchOutputTests {
  @Test func parsableGivesTheJobID() throws {
    #expect(SbatchOutput.jobID(from: try fixture("sbatch/parsable.txt")) == JobID("2"))
    #expect(SbatchOutput.jobID(from: "123;cluster\n") == JobID("123"))
    #expect(SbatchOutput.jobID(from: "Submitted batch job 5\n") == nil)
    #expect(SbatchOutput.jobID(from: "") == nil)
  }

  @Test func refusalSummaryKeepsSlurmsReason() throws {
    let summary = SlurmErrorText.summary(try fixture("sbatch/invalid-partition.txt"))
    #expect(summary == "Invalid partition name specified (invalid partition specified: nosuch)")
    let memory = SlurmErrorText.summary(try fixture("sbatch/mem-too-large.txt"))
    #expect(memory == "Requested node configuration is not available (Memory specification can not be satisfied)")
  }

  @Test func transientErrorsAreRecognised() {
    #expect(SlurmErrorText.isTransient("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"))
    #expect(SlurmErrorText.isTransient("squeue: error: slurm_receive_msg: Socket timed out on send/recv operation"))
    #expect(!SlurmErrorText.isTransient("sbatch: error: Batch job submission failed: Invalid partition name specified"))
  }
}

@Suite(.tags(.medium)) struct SqueueTests {
  @Test func expandedArrayRowsBecomeTasks() throws {
    let records = SqueueRecord.parseAll(try fixture("squeue/array-running-pending.txt"))
    #expect(records.count == 6)
    let snapshot = SqueueRecord.snapshot(records)
    #expect(snapshot.tasks[0] == .running)
    #expect(snapshot.tasks[1] == .running)
    #expect(snapshot.tasks[5] == .pending(reason: "JobArrayTaskLimit"))
    #expect(snapshot.pendingRest == nil)
    #expect(!snapshot.unknown)
  }

  @Test func aCombinedPendingRestIsKeptApart() throws {
    let snapshot = SqueueRecord.snapshot(SqueueRecord.parseAll(try fixture("squeue/array-combined-pending.txt")))
    #expect(snapshot.pendingRest == "2-5%2 (JobArrayTaskLimit)")
    // The rest's tasks are listed one by one, so they count as waiting, not as ended.
    #expect(snapshot.tasks.keys.sorted() == [0, 1, 2, 3, 4, 5])
    #expect(snapshot.tasks[4] == .pending(reason: "JobArrayTaskLimit"))
  }

  @Test func plainJobIsTaskZeroAndFinalStatesAreEnded() {
    let records = SqueueRecord.parseAll("5|5|N/A|TIMEOUT|TimeLimit|1:00|vm\n")
    #expect(records.first?.taskID == nil)
    #expect(SqueueRecord.snapshot(records).tasks == [0: .ended])
  }

  @Test func noRowsMeansUnknownAndGarbageIsSkipped() {
    #expect(SqueueRecord.snapshot([]).unknown)
    #expect(SqueueRecord.parseAll("garbage\n|||\n").isEmpty)
  }
}

@Suite(.tags(.medium)) struct ScontrolTests {
  @Test func timeoutCarriesTheLimitAndSignal() throws {
    let job = try #require(ScontrolJob.parseAll(try fixture("scontrol/timeout.txt")).first)
    #expect(job.end.kind == .timeout)
    #expect(job.end.timeLimit == "00:01:00")
    #expect(job.end.signal == 15)
    #expect(job.end.nodes == "vm")
  }

  @Test func cancelledWhilePendingHasNoNode() throws {
    let job = try #require(ScontrolJob.parseAll(try fixture("scontrol/cancelled.txt")).first)
    #expect(job.end.kind == .cancelled(by: nil))
    #expect(job.end.nodes == nil)
  }

  @Test func arrayGivesOneLinePerTask() throws {
    let jobs = ScontrolJob.parseAll(try fixture("scontrol/array-one-failed.txt"))
    #expect(jobs.count == 6)
    let failed = try #require(jobs.first { $0.taskID == 3 })
    #expect(failed.end.kind == .failed)
    #expect(failed.end.exitCode == 4)
    #expect(jobs.filter { $0.end.kind == .completed }.count == 5)
  }

  @Test func valuesWithSpacesStayWhole() {
    let job = ScontrolJob.parse("JobId=7 Comment=two words here JobState=FAILED ExitCode=1:0")
    #expect(job?["Comment"] == "two words here")
    #expect(job?["JobState"] == "FAILED")
  }
}

@Suite(.tags(.medium)) struct SacctTests {
  @Test func stepRowsAreSkippedAndCancellerIsRead() throws {
    let records = SacctRecord.parseAll(try fixture("sacct/array-and-cancelled-with-steps.txt"))
    #expect(records.count == 7)  // 6 array tasks and the cancelled job; no .batch rows
    let cancelled = try #require(records.first { $0.rawID == "6" })
    #expect(cancelled.end.kind == .cancelled(by: "0"))
    let failed = try #require(records.first { $0.taskID == 3 })
    #expect(failed.end.exitCode == 4)
    #expect(failed.jobID == "2_3")
  }

  @Test func exitCodeAndSignal() {
    #expect(SlurmState.parseExitCode("0:9") == (0, 9))
    #expect(SlurmState.parseExitCode("3:0") == (3, 0))
    let killed = SlurmState.taskEnd(state: "FAILED", exitCode: "0:9", timeLimit: nil, nodes: nil)
    #expect(killed.shellStatus == 137)
  }

  @Test func theStillPendingRestOfAnArrayIsNotEnded() throws {
    // Issue #19: tasks 0-87 done, 88-98 still the pending rest; the job is not over.
    let snapshot = SacctRecord.snapshot(SacctRecord.parseAll(try fixture("sacct/array-ended-with-pending-rest.txt")))
    #expect(snapshot.tasks.count == 99)
    #expect((0...87).allSatisfy { snapshot.tasks[$0] == .ended })
    #expect((88...98).allSatisfy { snapshot.tasks[$0] == .pending(reason: "JobArrayTaskLimit") })
    #expect(snapshot.pendingRest == "88-98 (JobArrayTaskLimit)")
  }

  @Test func aRestCancelledBeforeItStartedHasEnded() throws {
    let snapshot = SacctRecord.snapshot(SacctRecord.parseAll(try fixture("sacct/array-rest-cancelled-before-start.txt")))
    #expect(snapshot.tasks == Dictionary(uniqueKeysWithValues: (0...9).map { ($0, JobSnapshot.TaskState.ended) }))
    #expect(snapshot.pendingRest == nil)
  }

  @Test func unknownJobPrintsNothing() throws {
    #expect(SacctRecord.parseAll(try fixture("sacct/unknown-job.txt")).isEmpty)
  }

  @Test func otherStatesMapToKinds() {
    #expect(SlurmState.taskEnd(state: "NODE_FAIL", exitCode: "0:0", timeLimit: nil, nodes: "n1").kind == .nodeFailure)
    #expect(SlurmState.taskEnd(state: "PREEMPTED", exitCode: "0:0", timeLimit: nil, nodes: nil).kind == .preempted)
    #expect(SlurmState.taskEnd(state: "OUT_OF_MEMORY", exitCode: "0:125", timeLimit: nil, nodes: nil).kind == .outOfMemory)
    #expect(SlurmState.taskEnd(state: "COMPLETING", exitCode: "0:0", timeLimit: nil, nodes: nil).kind == .other("COMPLETING"))
    // The batch script has exited: the task is over for the watch, its end state not yet.
    #expect(SlurmState.taskState("COMPLETING", reason: "") == .ended)
    #expect(SlurmState.taskState("RUNNING", reason: "") == .running)
  }
}

/// What Slurm prints, with numbers far past Int's range wherever a number goes: parsed or
/// skipped, never a trap.
@Suite(.tags(.small)) struct SlurmOutputFuzzTests {
  @Test func longDigitStringsNeverCrashTheParsers() {
    var seed: UInt64 = 7
    func digits() -> String {
      seed = seed &* 6364136223846793005 &+ 1442695040888963407
      return String(repeating: "9", count: Int(seed >> 59) + 1) + String(seed)
    }
    for _ in 0..<500 {
      let n = digits()
      _ = SbatchOutput.jobID(from: "\(n);cluster\n")
      _ = SqueueRecord.snapshot(SqueueRecord.parseAll("\(n)|\(n)|\(n)|RUNNING|None|\(n)|vm\n\(n)|\(n)|0-\(n)%\(n)|PENDING|Priority|1:00|\n"))
      _ = SacctRecord.snapshot(SacctRecord.parseAll("\(n)|\(n)_[0-\(n)%\(n)]|PENDING|\(n):\(n)|\(n)|None|None\n\(n)|\(n)_\(n)|FAILED|\(n):\(n)|1:00|vm|None\n"))
      _ = ScontrolJob.parseAll("JobId=\(n) ArrayTaskId=\(n) JobState=FAILED ExitCode=\(n):\(n) TimeLimit=\(n)\n").map(\.end)
      _ = SlurmState.parseExitCode("\(n):\(n)")
    }
  }
}

@Suite struct SacctUsageTests {
  @Test func usageComesFromTheAllocationAndItsLargestStep() {
    let text = """
      77_0|00:01:02||n1
      77_0.batch|00:01:02|1234K|n1
      77_0.extern|00:01:02|0|n1
      77_1|00:00:09||n2
      77_1.batch|00:00:09|2040M|n2
      77_1.0|00:00:08|1.5G|n2
      77_[2-5]|00:00:00||None assigned
      """
    let usage = SacctUsage.parse(text)
    #expect(usage == [
      0: TaskUsage(elapsed: "00:01:02", maxRSS: "1234K", node: "n1"),
      1: TaskUsage(elapsed: "00:00:09", maxRSS: "2040M", node: "n2"),
    ])
    #expect(SacctUsage.parse("78|00:00:03||None assigned\n") == [0: TaskUsage(elapsed: "00:00:03")])
    #expect(SacctUsage.parse("garbage\n").isEmpty)
  }
}
