import ChildProcesses
import Slurm
import TestSizes
import Testing

/// Every sbatch refusal lands in one class. Fixtures/sbatch are recorded on the project's
/// Slurm 22.05 cluster (qos-submit-limit with scripts/slurm-local's ci-limit1), except four
/// that this one-node cluster cannot produce on demand, written from Slurm 22.05's own
/// messages: assoc-submit-limit, max-job-count, socket-timed-out, invalid-user.
@Suite(.tags(.medium)) struct SbatchRefusalTests {
  @Test(arguments: [
    ("invalid-number.txt", "Invalid numeric value \"abc\" for --cpus-per-task."),
    ("invalid-partition.txt", "Invalid partition name specified (invalid partition specified: nosuch)"),
    ("unknown-account.txt", "Invalid account or account/partition combination specified"),
    ("unknown-qos.txt", "Invalid qos specification"),
    ("more-cpus-than-the-cluster.txt", "More processors requested than permitted"),
    ("mem-too-large.txt", "Requested node configuration is not available (Memory specification can not be satisfied)"),
    ("array-too-large.txt", "Invalid job array specification"),
    ("invalid-time.txt", "Invalid --time specification"),
    ("invalid-memory.txt", "Invalid --mem specification"),
    ("over-partition-time-limit.txt", "Requested time limit is invalid (missing or exceeds some limit)"),
  ])
  func theUsersMistakesAreRequestErrors(file: String, reason: String) throws {
    #expect(SbatchRefusal.classify(status: .exited(1), stderr: try fixture("sbatch/\(file)")) == .request(reason))
  }

  @Test func submitLimitsNeedTheQueueToTell() throws {
    let reason = "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"
    for file in ["qos-submit-limit.txt", "assoc-submit-limit.txt"] {
      let refusal = SbatchRefusal.classify(status: .exited(1), stderr: try fixture("sbatch/\(file)"))
      #expect(refusal == .accountingPolicy(SlurmErrorText.summary(try fixture("sbatch/\(file)"))))
      #expect(SlurmErrorText.summary(try fixture("sbatch/\(file)")).hasPrefix(reason))
    }
    let qos = SubmitLimit(qos: "ci-limit1", maxSubmit: 1)
    #expect(SbatchRefusal.classifyAccounting(reason: reason, limits: [qos], queued: ["ci-limit1": 1], tasks: 1)
      == .queueFull("queue full for this user (QOS ci-limit1: 1 job)"))
    #expect(SbatchRefusal.classifyAccounting(reason: reason, limits: [SubmitLimit(qos: nil, maxSubmit: 10)], queued: ["normal": 4, "high": 6], tasks: 1)
      == .queueFull("queue full for this user (the account: 10 jobs)"))
    // Room in the queue: the refusal was about the job's size or time.
    #expect(SbatchRefusal.classifyAccounting(reason: reason, limits: [qos], queued: [:], tasks: 1) == .request(reason))
    // An array bigger than the limit can never fit: waiting would not help.
    #expect(SbatchRefusal.classifyAccounting(reason: reason, limits: [qos], queued: [:], tasks: 5)
      == .request("\(reason): the job has 5 tasks, over QOS ci-limit1's limit of 1 job per user"))
  }

  @Test func aFullSiteIsWaitedOutAndABusyControllerRetried() throws {
    #expect(SbatchRefusal.classify(status: .exited(1), stderr: try fixture("sbatch/max-job-count.txt")) == .queueFull("Resource temporarily unavailable (Slurm temporarily unable to accept job, sleeping and retrying)"))
    #expect(SbatchRefusal.classify(status: .exited(1), stderr: try fixture("sbatch/socket-timed-out.txt")) == .transient("Socket timed out on send/recv operation"))
  }

  @Test func aKilledOrSilentSbatchMayHaveSubmitted() {
    #expect(SbatchRefusal.classify(status: .signaled(15), stderr: "") == .maybeSubmitted("sbatch was killed by signal 15"))
    #expect(SbatchRefusal.classify(status: .exited(1), stderr: "\n") == .maybeSubmitted("sbatch failed (exit status 1) without saying why"))
  }

  @Test func anythingElseIsTheClustersFault() throws {
    #expect(SbatchRefusal.classify(status: .exited(1), stderr: try fixture("sbatch/invalid-user.txt")) == .system("Invalid user id"))
  }

  @Test func limitsAreReadFromSacctmgr() {
    #expect(SubmitLimit.parseQOS("ci-limit1|1\n") == [SubmitLimit(qos: "ci-limit1", maxSubmit: 1)])
    #expect(SubmitLimit.parseQOS("normal|\n").isEmpty)
    #expect(SubmitLimit.parseQOS("normal|99999999999999999999999\n").isEmpty)  // past Int: no limit we can count to
    let associations = SubmitLimit.parseAssociations("|\nnormal|20\n")
    #expect(associations.defaultQOS == "normal")
    #expect(associations.limits == [SubmitLimit(qos: nil, maxSubmit: 20)])
  }
}
