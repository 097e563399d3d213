#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
#if canImport(Glibc)
  import Glibc
#endif

/// The one way this package writes a file: under a temporary name beside it, then renamed
/// into place, so a killed or failed writer never leaves a half-written file under the final
/// name. The temporary is created with O_EXCL and O_NOFOLLOW: a name planted in a shared
/// directory (a symlink, a file of someone else's) is never written through.
public enum AtomicFiles {
  public struct WriteError: Error, Equatable, CustomStringConvertible, Sendable {
    public var path: String
    /// The OS's reason.
    public var reason: String
    public var description: String { "cannot write \(path): \(reason)" }

    public init(path: String, reason: String) {
      self.path = path
      self.reason = reason
    }
  }

  /// One file; `makeDirectories` creates the missing directories above it (0755).
  public static func write(_ data: Data, to path: String, mode: mode_t = 0o644, makeDirectories: Bool = false) throws(WriteError) {
    try write([(data, path)], mode: mode, makeDirectories: makeDirectories)
  }

  public static func write(_ text: String, to path: String, mode: mode_t = 0o644, makeDirectories: Bool = false) throws(WriteError) {
    try write(Data(text.utf8), to: path, mode: mode, makeDirectories: makeDirectories)
  }

  /// Several files that belong together (a pipeline and its items list): all are written
  /// before any is renamed, so a failure leaves every old file as it was.
  public static func write(_ files: [(data: Data, path: String)], mode: mode_t = 0o644, makeDirectories: Bool = false) throws(WriteError) {
    var staged: [(temporary: String, path: String)] = []
    func fail(_ path: String, _ code: Int32) -> WriteError {
      for file in staged { unlink(file.temporary) }
      return WriteError(path: path, reason: String(cString: strerror(code)))
    }
    for file in files {
      let directory = parent(of: file.path)
      if makeDirectories, let code = Self.makeDirectories(directory) { throw fail(file.path, code) }
      let temporary = "\(directory)/.\(name(of: file.path)).tmp-\(getpid())"
      if let code = create(temporary, file.data, mode: mode) { throw fail(file.path, code) }
      staged.append((temporary, file.path))
    }
    for file in staged where rename(file.temporary, file.path) != 0 {
      throw fail(file.path, errno)
    }
  }

  /// `path` opened for reading when it is a regular file, else -1 with errno set: for a file
  /// a job's own processes can replace (its output under the job directory). No symlink is
  /// followed, and a FIFO put in its place is refused at once instead of blocking the
  /// reader in open(2) until the runner kills it.
  public static func openRegularFile(_ path: String) -> Int32 {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { return -1 }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
      close(fd)
      errno = EINVAL
      return -1
    }
    // Back to blocking reads: a regular file never blocks, and later reads expect none.
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    return fd
  }

  /// The bytes of the regular file `path` (at most `limit` of them), nil when it is missing
  /// or not a regular file: `openRegularFile`'s guard for small files a job's processes
  /// could replace (its status files, its state).
  public static func readRegularFile(_ path: String, atMost limit: Int = 1 << 20) -> Data? {
    let fd = openRegularFile(path)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while data.count < limit {
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, limit - data.count)) }
      if count < 0 && errno == EINTR { continue }
      if count < 0 { return nil }
      if count == 0 { break }
      data.append(contentsOf: buffer[0..<count])
    }
    return data
  }

  /// One file at `path` below the directory `root`, for a directory someone else can write
  /// in (a CI job's checkout): every directory from `root` down is opened with O_NOFOLLOW
  /// and created when missing, so a symlink planted anywhere on the way (`.ci-slurm ->
  /// /elsewhere`) is refused rather than written through, however it is swapped in.
  public static func write(_ data: Data, to path: String, below root: String, mode: mode_t = 0o644) throws(WriteError) {
    try write(to: path, below: root, mode: mode) { fd in writeAll(fd, data) }
  }

  /// A copy of the file `source` (as long as it is when opened: a writer that goes on cannot
  /// keep the copy growing) at `path` below `root`, as `write(_:to:below:)` puts it; read and
  /// written a chunk at a time, so a task's gigabytes of output cost one chunk of memory.
  public static func copy(_ source: String, to path: String, below root: String, mode: mode_t = 0o644) throws(WriteError) {
    let input = openRegularFile(source)
    guard input >= 0 else { throw WriteError(path: path, reason: "cannot read \(source): \(String(cString: strerror(errno)))") }
    defer { close(input) }
    var info = stat()
    guard fstat(input, &info) == 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
    try write(to: path, below: root, mode: mode) { fd in
      var left = Int(info.st_size)
      var chunk = Data(count: min(max(left, 1), 1 << 20))
      while left > 0 {
        let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, min($0.count, left)) }
        if count < 0 && errno == EINTR { continue }
        if count < 0 { return errno }
        if count == 0 { break }
        if let failed = writeAll(fd, chunk.prefix(count)) { return failed }
        left -= count
      }
      return nil
    }
  }

  static func write(to path: String, below root: String, mode: mode_t, contents: (Int32) -> Int32?) throws(WriteError) {
    func fail(_ code: Int32) -> WriteError { WriteError(path: path, reason: String(cString: strerror(code))) }
    guard path.hasPrefix(root + "/") else { throw WriteError(path: path, reason: "not below \(root)") }
    let parts = path.dropFirst(root.count + 1).split(separator: "/").map(String.init)
    guard let name = parts.last, !parts.contains(".."), !parts.contains(".") else {
      throw WriteError(path: path, reason: "not a plain path below \(root)")
    }
    var directory = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard directory >= 0 else { throw fail(errno) }
    defer { close(directory) }
    for part in parts.dropLast() {
      if mkdirat(directory, part, 0o755) != 0 && errno != EEXIST { throw fail(errno) }
      let next = openat(directory, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
      guard next >= 0 else { throw fail(errno) }
      close(directory)
      directory = next
    }
    let temporary = ".\(name).tmp-\(getpid())"
    var fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    if fd < 0 && errno == EEXIST {
      unlinkat(directory, temporary, 0)
      fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    }
    guard fd >= 0 else { throw fail(errno) }
    let failed = fchmod(fd, mode) != 0 ? errno : contents(fd)
    close(fd)
    if let failed {
      unlinkat(directory, temporary, 0)
      throw fail(failed)
    }
    // rename replaces a planted symlink at the final name itself, never its target.
    if renameat(directory, temporary, directory, name) != 0 {
      let code = errno
      unlinkat(directory, temporary, 0)
      throw fail(code)
    }
  }

  /// Writes all of `data` to `fd`; the errno on failure.
  static func writeAll(_ fd: Int32, _ data: Data) -> Int32? {
    data.withUnsafeBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let count = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if count < 0 {
          if errno == EINTR { continue }
          return errno
        }
        offset += count
      }
      return nil
    }
  }

  /// Creates `path` afresh and writes `data`; the errno on failure. A leftover of an earlier
  /// writer with this pid is removed (unlink removes a symlink itself, never its target).
  static func create(_ path: String, _ data: Data, mode: mode_t) -> Int32? {
    var fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    if fd < 0 && errno == EEXIST {
      unlink(path)
      fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    }
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    // The umask may have narrowed the mode; a private file's mode is exact either way.
    if fchmod(fd, mode) != 0 { let code = errno; unlink(path); return code }
    if let failed = writeAll(fd, data) { unlink(path); return failed }
    return nil
  }

  /// `mkdir -p`, or the errno that stopped it.
  static func makeDirectories(_ path: String) -> Int32? {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
      current += "/\(part)"
      if mkdir(current, 0o755) != 0 && errno != EEXIST { return errno }
    }
    return nil
  }

  static func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }

  static func name(of path: String) -> String {
    path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
  }
}
