#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif
import AtomicFiles

/// Follows one task's output file as Slurm writes it: whatever bytes are new since the last
/// read, in order, none twice. Bytes are passed on untouched, so a UTF-8 character split
/// across two reads arrives whole, and a last line without a newline is not lost.
public final class OutputFollower {
  /// One read's worth: big enough for a fast burst, small enough that ci-run stays small
  /// (each chunk is written out before the next is read).
  public static let chunkSize = 1 << 20
  public let path: String
  private var fd: Int32 = -1
  public private(set) var bytesRead = 0

  public init(path: String) { self.path = path }
  deinit { if fd >= 0 { close(fd) } }

  /// At most one chunk (and at most `limit` bytes) of new bytes; empty when nothing new was
  /// written (or no file yet). Callers that must reach the end of the file call it until it
  /// returns empty. The file's size is asked first, so an array's thousand idle files cost
  /// no buffers.
  public func readNew(atMost limit: Int = OutputFollower.chunkSize) -> Data {
    let available = size() - bytesRead
    guard available > 0 else { return Data() }
    var data = Data(count: min(available, OutputFollower.chunkSize, limit))
    while true {
      let count = data.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if count > 0 {
        bytesRead += count
        if count < data.count { data.removeSubrange(count...) }
        return data
      }
      if count < 0 && errno == EINTR { continue }
      return Data()
    }
  }

  /// Moves past everything written so far without reading it (the log's limit is passed:
  /// only the tail is shown); whether there was anything new.
  @discardableResult public func skipToEnd() -> Bool {
    let end = size()
    guard end > bytesRead, lseek(fd, off_t(end), SEEK_SET) == off_t(end) else { return false }
    bytesRead = end
    return true
  }

  /// The last `bytes` of a file (empty when it cannot be read).
  public static func tail(of path: String, bytes: Int) -> Data {
    let fd = AtomicFiles.openRegularFile(path)
    guard fd >= 0 else { return Data() }
    defer { close(fd) }
    let size = lseek(fd, 0, SEEK_END)
    guard size > 0, lseek(fd, max(0, size - off_t(bytes)), SEEK_SET) >= 0 else { return Data() }
    var data = Data(count: min(Int(size), bytes))
    let count = data.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return count > 0 ? data.prefix(count) : Data()
  }

  /// The file's size now (0 while it does not exist or is not a regular file).
  public func size() -> Int {
    if fd < 0 {
      // The task can put anything at its output's path: only a regular file is read.
      fd = AtomicFiles.openRegularFile(path)
      if fd < 0 { return 0 }
    }
    var info = stat()
    guard fstat(fd, &info) == 0 else { return 0 }
    return Int(info.st_size)
  }
}

/// Marks each line of an array task's output with its task, `[task 3] `, holding a partial
/// last line back until its newline comes (or the task ends).
///
/// Memory stays bounded: a line longer than `maxLine` (64 KiB) is passed on in pieces of at
/// most that size, each ended with a newline. The first piece has the usual prefix; each
/// later piece of the same line is marked as continued, `[task 3+] `. Pieces end on a UTF-8
/// character boundary, so joining them (minus the prefix and the newline before each `+`
/// piece) gives back the line.
public struct LinePrefixer {
  public static let maxLine = 64 << 10
  public let prefix: [UInt8]
  public let continuedPrefix: [UInt8]
  private var pending: [UInt8] = []
  /// Whether `pending` continues a line already partly passed on.
  private var continued = false

  public init(task: Int) {
    prefix = Array("[task \(task)] ".utf8)
    continuedPrefix = Array("[task \(task)+] ".utf8)
  }

  public mutating func feed(_ data: Data) -> Data {
    var out = Data()
    // Raw pointers and memchr: this runs over every byte an array prints, debug builds too.
    data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
      guard let base = input.baseAddress else { return }
      var start = 0
      while start < input.count {
        let room = LinePrefixer.maxLine - pending.count
        let length = min(input.count - start, room)
        if let found = memchr(base + start, Int32(UInt8(ascii: "\n")), length) {
          let end = base.distance(to: UnsafeRawPointer(found)) + 1
          pending.withUnsafeBytes { emit($0, UnsafeRawBufferPointer(rebasing: input[start..<end]), into: &out) }
          pending.removeAll(keepingCapacity: true)
          continued = false
          start = end
        } else {
          pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<start + length]))
          start += length
          guard pending.count >= LinePrefixer.maxLine else { continue }
          // A full piece without a newline: pass it on, cut before a split character.
          let cut = LinePrefixer.characterBoundary(in: pending)
          pending.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[..<cut]), nil, into: &out) }
          pending.removeSubrange(..<cut)
          continued = true
        }
      }
    }
    return out
  }

  /// The prefix, `head`, then `tail` (the rest of the line, its newline included) or, with
  /// no tail, a newline that ends the piece.
  private func emit(_ head: UnsafeRawBufferPointer, _ tail: UnsafeRawBufferPointer?, into out: inout Data) {
    out.append(contentsOf: continued ? continuedPrefix : prefix)
    if let start = head.baseAddress { out.append(start.assumingMemoryBound(to: UInt8.self), count: head.count) }
    if let tail, let start = tail.baseAddress {
      out.append(start.assumingMemoryBound(to: UInt8.self), count: tail.count)
    } else if tail == nil {
      out.append(UInt8(ascii: "\n"))
    }
  }

  /// The end of the last whole UTF-8 character in `bytes` (all of it if none is split).
  static func characterBoundary(in bytes: [UInt8]) -> Int {
    // The last lead byte (not 10xxxxxx) is at most 4 bytes from the end in valid UTF-8.
    guard let lead = bytes.indices.reversed().prefix(4).first(where: { bytes[$0] & 0xC0 != 0x80 }) else {
      return bytes.count  // not UTF-8: any cut is as good as another
    }
    let byte = bytes[lead]
    let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
    return lead + length <= bytes.count || lead == 0 ? bytes.count : lead
  }

  /// The partial last line, with a newline so the next task's line starts cleanly.
  public mutating func finish() -> Data {
    guard !pending.isEmpty else { return Data() }
    var out = Data()
    pending.withUnsafeBytes { emit($0, nil, into: &out) }
    pending.removeAll()
    continued = false
    return out
  }
}
