#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling
public import SbatchModel
import Synchronization

/// Slurm, with the watch's routine looks shared by every ci-run of the account on this host:
/// one `squeue --me` per tick answers for all their jobs (`SharedStatusFile`), so the load
/// on slurmctld does not grow with the number of CI jobs, and slurmdbd is not polled at
/// all. Whichever process finds the answer older than the tick refreshes it under the
/// lock; the others read it.
///
/// What still goes to Slurm per job: the submission, the `fresh` looks (a status file was
/// written, a cancel was sent: the end is due now, and one quick question confirms it), one
/// question when the listing shows a task ended, and the end state and usage once the job
/// is over. A normal end comes from the status file at
/// once, so the tick only bounds how late an outside kill, a node failure or a pending
/// reason is seen.
public final class SharedStatusScheduler: Scheduler {
  public var name: String { backend.name }
  let backend: SlurmScheduler
  let directory: String
  let host: String
  /// One line into the CI log.
  let note: @Sendable (String) -> Void
  let tick: TimeInterval
  let now: @Sendable () -> Date
  /// When each job this process submitted was accepted: a listing taken before that cannot
  /// know the job, and its silence means nothing.
  let submitted = Mutex<[JobID: Date]>([:])
  /// The tasks Slurm itself said ended, asked about the job alone. The shared file is the
  /// account's, so the account's own jobs can write it: a listing may say when to ask, but
  /// an end (which makes the watch trust a status file) is only taken from Slurm directly.
  let confirmedEnds = Mutex<[JobID: Set<Int>]>([:])

  /// The shared file, opened at the first look (ci-run may start before ci-prepare has
  /// made the data root); nil once it proved unusable, and this job asks on its own.
  let opened = Mutex<SharedStatusFile??>(nil)

  public init(
    backend: SlurmScheduler, directory: String, host: String, tick: TimeInterval,
    note: @escaping @Sendable (String) -> Void = { _ in }, now: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.backend = backend
    self.directory = directory
    self.host = host
    self.note = note
    self.tick = tick
    self.now = now
  }

  /// A listing older than this while another process holds the lock means the refresher is
  /// stuck (stopped, not dead: the kernel drops a dead one's lock); each job then asks on
  /// its own, as without sharing, until the lock is free again.
  var stuckAfter: TimeInterval { 2 * tick + 2 * backend.retry.commandTimeout }

  public func checkAvailable() throws { try backend.checkAvailable() }

  public func submit(_ job: BatchJob) throws -> JobID {
    let id = try backend.submit(job)
    let accepted = now()
    submitted.withLock { $0[id] = accepted }
    return id
  }

  public func snapshot(of id: JobID, fresh: Bool) throws -> JobSnapshot {
    guard !fresh, let accepted = submitted.withLock({ $0[id] }), let listing = currentListing() else {
      return try backend.snapshot(of: id, fresh: fresh)
    }
    // Every watcher asks again when this answer expires (or, when it already has and
    // another process is refreshing it, in a second): the refresh happens at the tick and
    // all of them see it then.
    let expiry = listing.takenAt.addingTimeInterval(tick)
    let renewsAt = max(expiry, now().addingTimeInterval(1))
    if listing.takenAt <= accepted { return JobSnapshot(renewsAt: renewsAt) }
    // Not listed although asked after the submission: gone from slurmctld (MinJobAge).
    guard var listed = try listing.snapshot(of: id) else { return try confirmed(id) }
    let ended = Set(listed.tasks.filter { $0.value == .ended }.map(\.key))
    guard ended.isSubset(of: confirmedEnds.withLock({ $0[id] ?? [] })) else { return try confirmed(id) }
    listed.renewsAt = renewsAt
    return listed
  }

  /// The job's own question, once per newly ended task: the "at most one final query".
  func confirmed(_ id: JobID) throws -> JobSnapshot {
    let answer = try backend.snapshot(of: id, fresh: true)
    let ended = answer.tasks.filter { $0.value == .ended }.map(\.key)
    confirmedEnds.withLock { $0[id, default: []].formUnion(ended) }
    return answer
  }

  public func pendingReason(of id: JobID) -> String? {
    guard let listing = currentListing() else { return backend.pendingReason(of: id) }
    return listing.pendingReason(of: id)
  }

  /// The shared answer if it is younger than the tick; else a new one, asked under the
  /// lock; the last one while another process asks; nil when the job should ask on its own.
  func currentListing() -> AccountListing? {
    guard let file = sharedFile() else { return nil }
    let young = { [tick, now] (listing: AccountListing) in
      let age = now().timeIntervalSince(listing.takenAt)
      return age >= 0 && age < tick
    }
    let last = file.read()
    if let last, young(last) { return last }
    guard let lock = file.tryLock() else {
      // An answer dated in the future (a clock step, or written so) is not served either.
      guard let last, case let age = now().timeIntervalSince(last.takenAt), age >= 0, age < stuckAfter else { return nil }
      return last
    }
    defer { file.unlock(lock) }
    // Another process may have refreshed between the read and the lock.
    if let again = file.read(), young(again) { return again }
    let takenAt = now()
    let text: String
    do {
      text = AccountListing.render(takenAt: takenAt, stdout: try backend.accountListing())
    } catch let error as SchedulerError {
      // The failure is shared too: a controller away is asked once per tick, not by every job.
      text = AccountListing.render(takenAt: takenAt, failure: error)
    } catch {
      text = AccountListing.render(takenAt: takenAt, failure: SchedulerError(.commandFailed, "\(error)"))
    }
    try? file.write(text)
    return AccountListing.parse(text)
  }

  func sharedFile() -> SharedStatusFile? {
    let (file, problem) = opened.withLock { opened -> (SharedStatusFile?, SchedulerError?) in
      if let known = opened { return (known, nil) }
      do throws(SchedulerError) {
        let file = try SharedStatusFile(directory: directory, host: host)
        opened = .some(file)
        return (file, nil)
      } catch {
        opened = .some(nil)
        return (nil, error)
      }
    }
    if let problem { note("Not sharing Slurm status queries with this account's other CI jobs: \(problem); this job asks Slurm on its own") }
    return file
  }

  public func finalStates(of id: JobID, in directory: String) throws -> TaskEnds {
    try backend.finalStates(of: id, in: directory)
  }
  public func cancel(_ id: JobID) throws { try backend.cancel(id) }
  public func lowerTimeLimit(of id: JobID, task: Int?, toMinutes minutes: Int) throws {
    try backend.lowerTimeLimit(of: id, task: task, toMinutes: minutes)
  }
  public func cancel(named name: String) throws { try backend.cancel(named: name) }
  public func liveJobs(named name: String) throws -> [JobID] { try backend.liveJobs(named: name) }
  public func usage(of id: JobID) -> [Int: TaskUsage] { backend.usage(of: id) }
  public func submissionCommand(for job: BatchJob) -> [String]? { backend.submissionCommand(for: job) }
}
