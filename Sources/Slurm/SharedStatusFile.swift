import AtomicFiles
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling

#if canImport(Glibc)
  import Glibc
#endif

/// The shared status file of one account on one host, `<directory>/<host>.squeue`, and the
/// lock its refresher holds, `<directory>/<host>.lock`. The directory is the account's own
/// (mode 0700, checked before every use): no other CI user can read which jobs the account
/// runs or plant an answer. A file is trusted only when it is a regular file of this
/// account, not a symlink, open to nobody else; anything else is ignored and replaced.
/// The lock is `flock`'s, which the kernel drops when its holder dies: a crashed refresher
/// never leaves a stale lock behind.
public struct SharedStatusFile: Sendable {
  public let directory: String
  let host: String

  /// Creates the directory if need be. Throws a line saying what to fix when it belongs to
  /// someone else, is a symlink, or is open to others.
  public init(directory: String, host: String) throws(SchedulerError) {
    self.directory = directory
    self.host = String(host.unicodeScalars.map { scalar -> Character in
      scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || "-_.".unicodeScalars.contains(scalar))
        ? Character(scalar) : "_"
    })
    if mkdir(directory, 0o700) != 0 && errno != EEXIST {
      throw SchedulerError(.commandFailed, "cannot create \(directory): \(String(cString: strerror(errno)))")
    }
    try checkDirectory()
  }

  var listingPath: String { "\(directory)/\(host).squeue" }
  var lockPath: String { "\(directory)/\(host).lock" }

  /// The directory is this account's, a real directory, and private.
  func checkDirectory() throws(SchedulerError) {
    var info = stat()
    guard lstat(directory, &info) == 0 else {
      throw SchedulerError(.commandFailed, "cannot check \(directory): \(String(cString: strerror(errno)))")
    }
    if let problem = SharedStatusFile.untrusted(info, kind: S_IFDIR) {
      throw SchedulerError(.commandFailed, "\(directory) \(problem); remove it (the driver makes it again, mode 0700)")
    }
  }

  /// Why a file or directory is not this account's private one, or nil.
  static func untrusted(_ info: stat, kind: mode_t) -> String? {
    if info.st_mode & S_IFMT != kind { return kind == S_IFDIR ? "is not a directory (a symlink?)" : "is not a regular file" }
    if info.st_uid != geteuid() { return "belongs to uid \(info.st_uid), not to this account (uid \(geteuid()))" }
    if info.st_mode & 0o077 != 0 { return "is open to other accounts (mode \(String(info.st_mode & 0o777, radix: 8)))" }
    return nil
  }

  /// The last answer, or nil when there is none this account can trust.
  public func read() -> AccountListing? {
    guard (try? checkDirectory()) != nil else { return nil }
    // O_NONBLOCK: a FIFO in its place must not hang the job.
    let fd = open(listingPath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, SharedStatusFile.untrusted(info, kind: S_IFREG) == nil, info.st_size < 64 << 20 else { return nil }
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      if count <= 0 { break }
      data.append(contentsOf: buffer[0..<count])
    }
    return AccountListing.parse(String(decoding: data, as: UTF8.self))
  }

  /// Replaces the answer atomically (readers see the old one or the new one, whole).
  public func write(_ text: String) throws(SchedulerError) {
    try checkDirectory()
    do {
      try AtomicFiles.write(text, to: listingPath, mode: 0o600)
    } catch {
      throw SchedulerError(.commandFailed, error.description)
    }
  }

  /// Takes the refresher's lock without waiting; nil when another process holds it. The
  /// lock is held until `unlock`, or until this process dies.
  public func tryLock() -> Int32? {
    guard (try? checkDirectory()) != nil else { return nil }
    let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return nil }
    var info = stat()
    guard fstat(fd, &info) == 0, SharedStatusFile.untrusted(info, kind: S_IFREG) == nil, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      close(fd)
      return nil
    }
    return fd
  }

  public func unlock(_ fd: Int32) { close(fd) }
}
