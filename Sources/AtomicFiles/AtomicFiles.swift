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
    let failed: Int32? = data.withUnsafeBytes { buffer in
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
    if let failed { unlink(path); return failed }
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
