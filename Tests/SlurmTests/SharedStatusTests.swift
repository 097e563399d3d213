import ChildProcesses
import ExecutorCore
import Foundation
import Scheduling
import Slurm
import Synchronization
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

@Suite(.tags(.small)) struct AccountListingTests {
  let taken = Date(timeIntervalSince1970: 1_800_000_000)

  func listing() throws -> AccountListing {
    try #require(AccountListing.parse(AccountListing.render(takenAt: taken, stdout: try fixture("squeue/account-listing.txt"))))
  }

  @Test func oneListingAnswersForEveryJobOfTheAccount() throws {
    let listing = try listing()
    #expect(listing.takenAt == taken)
    #expect(try listing.snapshot(of: JobID("22483")) == JobSnapshot(tasks: [0: .running]))
    // Cancelled outside CI: ended, which the watch then asks about.
    #expect(try listing.snapshot(of: JobID("22485")) == JobSnapshot(tasks: [0: .ended]))
    // An array's running task has its own id (%A), its pending ones the array's.
    #expect(try listing.snapshot(of: JobID("22484")) == JobSnapshot(tasks: [
      0: .running, 1: .pending(reason: "JobArrayTaskLimit"), 2: .pending(reason: "JobArrayTaskLimit"),
      3: .pending(reason: "JobArrayTaskLimit"),
    ]))
    #expect(listing.pendingReason(of: JobID("22484")) == "JobArrayTaskLimit")
    #expect(listing.pendingReason(of: JobID("22483")) == nil)
    // Not listed: the listing cannot say.
    #expect(try listing.snapshot(of: JobID("22486")) == nil)
    #expect(try listing.snapshot(of: JobID("99")) == nil)
  }

  @Test func aFailedAnswerIsSharedAsTheError() throws {
    let text = AccountListing.render(takenAt: taken, failure: SchedulerError(.unavailable, "squeue --me: Socket timed out\non send"))
    let listing = try #require(AccountListing.parse(text))
    #expect(listing.answer == .failure(SchedulerError(.unavailable, "squeue --me: Socket timed out on send")))
    #expect(throws: SchedulerError(.unavailable, "squeue --me: Socket timed out on send")) { try listing.snapshot(of: JobID("1")) }
  }

  @Test(arguments: [
    "", "22483|22483|N/A|RUNNING|None|UNLIMITED|vm\n", "ci-slurm account listing 1 nan ok\n",
    "ci-slurm account listing 2 1800000000 ok\n", "ci-slurm account listing 1 1800000000 maybe\n",
  ])
  func anythingElseIsNoListing(text: String) {
    #expect(AccountListing.parse(text) == nil)
  }
}

/// The time every process of the test sees; moved by hand.
final class TestTime: Sendable {
  let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
  var now: Date { value.withLock { $0 } }
  func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The sharing, in-process: each `SharedStatusScheduler` stands for one ci-run process, all
/// of them over one directory, one scripted Slurm and one hand-moved clock.
@Suite(.tags(.medium)) struct SharedStatusSchedulerTests {
  let directory: String
  let time = TestTime()

  init() throws {
    directory = NSTemporaryDirectory() + "shared-status-\(UUID().uuidString.prefix(8))"
  }

  func listing(_ rows: [String]) -> CommandResult { ok(rows.map { "\($0)\n" }.joined()) }

  func schedulers(_ count: Int, runner: some CommandRunner, notes: LockedLines = LockedLines()) throws -> [SharedStatusScheduler] {
    let time = time
    return (0..<count).map { _ in
      SharedStatusScheduler(
        backend: SlurmScheduler(runner: runner, environment: [:], retry: quickRetry()), directory: directory, host: "login1",
        tick: 30, note: { notes.append($0) }, now: { time.now })
    }
  }

  func queries(_ runner: ScriptedCommandRunner) -> (account: Int, perJob: Int) {
    let account = runner.commands.filter { $0.arguments == AccountListing.arguments }.count
    let perJob = runner.commands.filter { ["sacct", "squeue"].contains($0.arguments[0]) && $0.arguments != AccountListing.arguments }.count
    return (account, perJob)
  }

  @Test func fiftyWatchersMakeOneQueryPerTick() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let rows = (0..<50).map { "\(100 + $0)|\(100 + $0)|N/A|RUNNING|None|UNLIMITED|vm" }
    var answers: [(prefix: [String], result: CommandResult)] = (0..<50).map { (["sbatch"], ok("\(100 + $0)\n")) }
    answers.append((AccountListing.arguments, listing(rows)))
    let runner = ScriptedCommandRunner(answers)
    let watchers = try schedulers(50, runner: runner)
    let ids = try watchers.map { try $0.submit(sampleJob) }
    // Ten minutes of each watcher polling every 10 s, in turn, as 50 ci-runs would.
    for _ in 0..<60 {
      time.advance(10)
      for (watcher, id) in zip(watchers, ids) { #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running]) }
    }
    #expect(queries(runner).account == 20)
    #expect(queries(runner).perJob == 0)
  }

  @Test func anOutsideKillIsSeenAtTheNextTickAndTheEndIsConfirmedPerJob() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let runner = ScriptedCommandRunner([
      (["sbatch"], ok("7\n")), (["sbatch"], ok("8\n")),
      (AccountListing.arguments, listing(["7|7|N/A|RUNNING|None|UNLIMITED|vm", "8|8|N/A|RUNNING|None|UNLIMITED|vm"])),
      (AccountListing.arguments, listing(["7|7|N/A|CANCELLED|None|UNLIMITED|vm", "8|8|N/A|RUNNING|None|UNLIMITED|vm"])),
      (["squeue", "-h", "-r", "-t", "all", "-j", "7"], ok("7|7|N/A|CANCELLED|None|UNLIMITED|vm\n")),
      (["squeue", "-h", "-r", "-t", "all", "-j", "8"], ok("8|8|N/A|COMPLETING|None|UNLIMITED|vm\n")),
    ])
    let watchers = try schedulers(2, runner: runner)
    let seven = try watchers[0].submit(sampleJob)
    let eight = try watchers[1].submit(sampleJob)
    time.advance(1)
    #expect(try watchers[0].snapshot(of: seven, fresh: false).tasks == [0: .running])
    time.advance(29)
    #expect(try watchers[0].snapshot(of: seven, fresh: false).tasks == [0: .running])
    time.advance(1)
    #expect(try watchers[1].snapshot(of: eight, fresh: false).tasks == [0: .running])
    // The end is Slurm's word about the job itself, asked once.
    #expect(try watchers[0].snapshot(of: seven, fresh: false).tasks == [0: .ended])
    #expect(try watchers[0].snapshot(of: seven, fresh: false).tasks == [0: .ended])
    #expect(queries(runner) == (account: 2, perJob: 1))
    // Job 8 wrote its status: the end is confirmed with a question of its own.
    #expect(try watchers[1].snapshot(of: eight, fresh: true).tasks == [0: .ended])
    #expect(queries(runner) == (account: 2, perJob: 2))
  }

  /// Slurm as time goes on: jobs 7, 8 and 9 run until `killAt`, when someone outside CI
  /// cancels them; every question is answered as of the test's clock.
  final class KilledAt: CommandRunner, @unchecked Sendable {
    let killAt: Date
    let time: TestTime
    private let lock = NSLock()
    private var submitted = 6
    private(set) var listings: [Date] = []
    init(_ killAt: Date, time: TestTime) { (self.killAt, self.time) = (killAt, time) }

    func run(_ command: Command) throws -> CommandResult {
      lock.lock()
      defer { lock.unlock() }
      let state = time.now >= killAt ? "CANCELLED" : "RUNNING"
      func row(_ id: Int) -> String { "\(id)|\(id)|N/A|\(state)|None|UNLIMITED|n1\n" }
      if command.arguments[0] == "sbatch" {
        submitted += 1
        return ok("\(submitted)\n")
      }
      if command.arguments == AccountListing.arguments {
        listings.append(time.now)
        return ok((7...9).map(row).joined())
      }
      guard command.arguments[0] == "squeue", let j = command.arguments.firstIndex(of: "-j"), let id = Int(command.arguments[j + 1]) else {
        return fail("unscripted: \(command)")
      }
      return ok(row(id))
    }
  }

  /// What the tick promises, with the watch's own timing: three ci-runs, each polling every
  /// 10 s from its own start (0, 3.3 and 6.6 s), the output loop's 0.1 s steps, and a kill
  /// at any moment. Each watcher asks again when the shared answer expires, so every one
  /// sees the kill within one tick of it (polling every 10 s alone, the last could be a
  /// whole poll interval later), and the account is still listed once per tick.
  @Test(arguments: [5.0, 31.0, 41.0, 57.3, 69.9])
  func everyWatcherSeesAnOutsideKillWithinOneTick(killAt: Double) throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let start = time.now
    let slurm = KilledAt(start.addingTimeInterval(killAt), time: time)
    let watchers = try schedulers(3, runner: slurm)
    var watches: [JobWatch?] = [nil, nil, nil]
    var ids: [JobID] = []
    var answers: [Result<JobSnapshot, SchedulerError>?] = [nil, nil, nil]
    var seenAt: [Double?] = [nil, nil, nil]
    for step in 0...1500 {
      let now = Double(step) / 10
      time.value.withLock { $0 = start.addingTimeInterval(now) }
      for index in 0..<3 {
        if watches[index] == nil, now >= 3.3 * Double(index) - 0.001 {
          ids.append(try watchers[index].submit(sampleJob))
          watches[index] = JobWatch(
            id: ids[index], schedulerName: "Slurm", tasks: [0], isArray: false, submittedAt: time.now,
            timing: .init(pollSeconds: 10, heartbeatSeconds: 30, cancelWaitSeconds: 20))
        }
        guard var watch = watches[index], seenAt[index] == nil else { continue }
        var observation = JobWatch.Observation(now: time.now)
        observation.snapshot = answers[index]
        answers[index] = nil
        if case .success(let snapshot)? = observation.snapshot, snapshot.tasks[0] == .ended { seenAt[index] = now }
        for case .poll(let fresh) in watch.step(observation) {
          do {
            answers[index] = .success(try watchers[index].snapshot(of: ids[index], fresh: fresh))
          } catch let error as SchedulerError {
            answers[index] = .failure(error)
          }
        }
        watches[index] = watch
      }
    }
    for (index, seen) in seenAt.enumerated() {
      let seen = try #require(seen, "watcher \(index) never saw the kill at \(killAt) s")
      #expect(seen - killAt <= 30 + 0.2, "watcher \(index): killed at \(killAt) s, seen at \(seen) s")
    }
    // One listing per tick for all three.
    let gaps = zip(slurm.listings.dropFirst(), slurm.listings).map { $0.timeIntervalSince($1) }
    #expect(!gaps.isEmpty && gaps.allSatisfy { $0 >= 30 }, "listings \(gaps) s apart")
  }

  @Test func aSilentListingAfterTheSubmissionAsksTheJobItself() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let runner = ScriptedCommandRunner([
      (["sbatch"], ok("7\n")), (AccountListing.arguments, listing([])),
      (["squeue", "-h", "-r", "-t", "all", "-j", "7"], ok("7|7|N/A|COMPLETED|None|UNLIMITED|vm\n")),
    ])
    let watcher = try schedulers(1, runner: runner)[0]
    let id = try watcher.submit(sampleJob)
    time.advance(1)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .ended])
    #expect(queries(runner) == (account: 1, perJob: 1))
  }

  @Test func aControllerAwayIsAskedOncePerTickForEveryone() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let runner = ScriptedCommandRunner([
      (["sbatch"], ok("7\n")), (["sbatch"], ok("8\n")),
      (AccountListing.arguments, fail("squeue: error: Unable to contact slurm controller (connect failure)")),
    ])
    let watchers = try schedulers(2, runner: runner)
    let ids = try watchers.map { try $0.submit(sampleJob) }
    time.advance(1)
    for (watcher, id) in zip(watchers, ids) {
      #expect(throws: SchedulerError(.unavailable, "squeue --me: Unable to contact slurm controller (connect failure)")) {
        try watcher.snapshot(of: id, fresh: false)
      }
    }
    #expect(queries(runner) == (account: 1, perJob: 0))
  }

  /// A refresher stopped while it holds the lock, then killed: the others serve the last
  /// answer, ask on their own once it is too old, and share again once the kernel has
  /// dropped the dead holder's lock.
  @Test func aStuckThenCrashedRefresherDoesNotBlindTheOthers() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let runner = ScriptedCommandRunner([
      (["sbatch"], ok("7\n")), (AccountListing.arguments, listing(["7|7|N/A|RUNNING|None|UNLIMITED|vm"])),
      (["sacct"], ok("7|7|RUNNING|0:0|UNLIMITED|vm|None\n")),
    ])
    let watcher = try schedulers(1, runner: runner)[0]
    let id = try watcher.submit(sampleJob)
    time.advance(1)
    _ = try watcher.snapshot(of: id, fresh: false)
    #expect(queries(runner) == (account: 1, perJob: 0))

    // The refresher takes the lock and says so; reading its line waits for that. (-o: the
    // lock is flock's alone, not its child's, so it is gone once flock is reaped.)
    let holder = try ChildProcess(
      arguments: ["flock", "-o", "\(directory)/login1.lock", "sh", "-c", "echo held; exec sleep 600"],
      environment: ProcessInfo.processInfo.environment, stderr: .null, newProcessGroup: true)
    var said = [UInt8](repeating: 0, count: 5)
    #expect(read(try #require(holder.stdoutFD), &said, 5) == 5 && said == Array("held\n".utf8))
    time.advance(60)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    #expect(queries(runner) == (account: 1, perJob: 0))
    time.advance(200)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    #expect(queries(runner) == (account: 1, perJob: 1))

    holder.signal(SIGKILL, group: true)
    holder.wait()
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    #expect(queries(runner) == (account: 2, perJob: 1))
  }

  @Test func anAnswerDatedInTheFutureIsNotServedWhileTheLockIsHeld() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let runner = ScriptedCommandRunner([
      (["sbatch"], ok("7\n")), (AccountListing.arguments, listing(["7|7|N/A|RUNNING|None|UNLIMITED|vm"])),
      (["sacct"], ok("7|7|RUNNING|0:0|UNLIMITED|vm|None\n")),
    ])
    let watcher = try schedulers(1, runner: runner)[0]
    let id = try watcher.submit(sampleJob)
    time.advance(1)
    _ = try watcher.snapshot(of: id, fresh: false)
    // The account's own job writes an answer dated a day ahead, saying the job pends, and
    // holds the refresher's lock so that no one replaces it.
    let forged = AccountListing.render(takenAt: time.now.addingTimeInterval(86400), stdout: "7|7|N/A|PENDING|Priority|UNLIMITED|\n")
    try forged.write(toFile: "\(directory)/login1.squeue", atomically: true, encoding: .utf8)
    chmod("\(directory)/login1.squeue", 0o600)
    let holder = try ChildProcess(
      arguments: ["flock", "-o", "\(directory)/login1.lock", "sh", "-c", "echo held; exec sleep 600"],
      environment: ProcessInfo.processInfo.environment, stderr: .null, newProcessGroup: true)
    defer {
      holder.signal(SIGKILL, group: true)
      holder.wait()
    }
    var said = [UInt8](repeating: 0, count: 5)
    #expect(read(try #require(holder.stdoutFD), &said, 5) == 5 && said == Array("held\n".utf8))
    time.advance(31)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    #expect(queries(runner) == (account: 1, perJob: 1))
  }

  /// Files another account could plant are never read or written through.
  @Test func aPlantedAnswerIsNotTrusted() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let runner = ScriptedCommandRunner([
      (["sbatch"], ok("7\n")), (AccountListing.arguments, listing(["7|7|N/A|RUNNING|None|UNLIMITED|vm"])),
      (["squeue", "-h", "-r", "-t", "all", "-j", "7"], ok("7|7|N/A|RUNNING|None|UNLIMITED|vm\n")),
    ])
    let watcher = try schedulers(1, runner: runner)[0]
    let id = try watcher.submit(sampleJob)
    time.advance(1)
    let forged = AccountListing.render(takenAt: time.now, stdout: "7|7|N/A|COMPLETED|None|UNLIMITED|vm\n")
    _ = try SharedStatusFile(directory: directory, host: "login1")  // as an earlier look made it
    let elsewhere = directory + "-forged"
    defer { try? FileManager.default.removeItem(atPath: elsewhere) }
    try forged.write(toFile: elsewhere, atomically: false, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: "\(directory)/login1.squeue", withDestinationPath: elsewhere)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    // Replaced, not written through.
    #expect(try String(contentsOfFile: elsewhere, encoding: .utf8) == forged)

    time.advance(31)
    try FileManager.default.removeItem(atPath: "\(directory)/login1.squeue")
    let fresh = AccountListing.render(takenAt: time.now, stdout: "7|7|N/A|COMPLETED|None|UNLIMITED|vm\n")
    try fresh.write(toFile: "\(directory)/login1.squeue", atomically: false, encoding: .utf8)
    chmod("\(directory)/login1.squeue", 0o666)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    #expect(queries(runner) == (account: 2, perJob: 0))

    // The account's own job can write the file: its word that the job ended is checked
    // with Slurm, which says it runs on.
    time.advance(31)
    let own = AccountListing.render(takenAt: time.now, stdout: "7|7|N/A|COMPLETED|None|UNLIMITED|vm\n")
    try own.write(toFile: "\(directory)/login1.squeue", atomically: true, encoding: .utf8)
    chmod("\(directory)/login1.squeue", 0o600)
    #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    #expect(queries(runner) == (account: 2, perJob: 1))
  }

  @Test func aJobWhoseSharedFileIsUnusableSaysSoOnceAndAsksOnItsOwn() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileManager.default.createSymbolicLink(atPath: directory, withDestinationPath: NSTemporaryDirectory())
    let runner = ScriptedCommandRunner([(["sbatch"], ok("7\n")), (["sacct"], ok("7|7|RUNNING|0:0|UNLIMITED|vm|None\n"))])
    let notes = LockedLines()
    let watcher = try schedulers(1, runner: runner, notes: notes)[0]
    let id = try watcher.submit(sampleJob)
    for _ in 0..<3 {
      time.advance(10)
      #expect(try watcher.snapshot(of: id, fresh: false).tasks == [0: .running])
    }
    #expect(queries(runner) == (account: 0, perJob: 3))
    #expect(notes.all == [
      "Not sharing Slurm status queries with this account's other CI jobs: \(directory) is not a directory (a symlink?); remove it (the driver makes it again, mode 0700); this job asks Slurm on its own"
    ])
  }

  @Test func aDirectoryNotTheAccountsOwnIsRefusedWithWhatToDo() throws {
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileManager.default.createSymbolicLink(atPath: directory, withDestinationPath: NSTemporaryDirectory())
    #expect(throws: SchedulerError(.commandFailed, "\(directory) is not a directory (a symlink?); remove it (the driver makes it again, mode 0700)")) {
      try SharedStatusFile(directory: directory, host: "login1")
    }
    try FileManager.default.removeItem(atPath: directory)
    mkdir(directory, 0o755)
    #expect(throws: SchedulerError(.commandFailed, "\(directory) is open to other accounts (mode 755); remove it (the driver makes it again, mode 0700)")) {
      try SharedStatusFile(directory: directory, host: "login1")
    }
    if geteuid() == 0 {
      chmod(directory, 0o700)
      chown(directory, 4242, 4242)
      #expect(throws: SchedulerError(.commandFailed, "\(directory) belongs to uid 4242, not to this account (uid 0); remove it (the driver makes it again, mode 0700)")) {
        try SharedStatusFile(directory: directory, host: "login1")
      }
    }
  }
}
