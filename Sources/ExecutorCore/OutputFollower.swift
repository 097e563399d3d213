// FoundationEssentials where there is one: the driver's processes stay small (no ICU).
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif

/// Follows one task's output file as Slurm writes it: whatever bytes are new since the last
/// read, in order, none twice. Bytes are passed on untouched, so a UTF-8 character split
/// across two reads arrives whole, and a last line without a newline is not lost.
public final class OutputFollower {
  public let path: String
  private var fd: Int32 = -1
  private var buffer = [UInt8](repeating: 0, count: 1 << 16)
  public private(set) var bytesRead = 0

  public init(path: String) { self.path = path }
  deinit { if fd >= 0 { close(fd) } }

  /// New bytes since the last call; empty when nothing was written (or no file yet).
  public func readNew() -> Data {
    if fd < 0 {
      fd = open(path, O_RDONLY | O_CLOEXEC)
      if fd < 0 { return Data() }
    }
    var data = Data()
    while true {
      let count = read(fd, &buffer, buffer.count)
      if count > 0 {
        data.append(contentsOf: buffer[0..<count])
        bytesRead += count
        if data.count > 1 << 22 { break }  // hand on big bursts in pieces
      } else if count < 0 && errno == EINTR {
        continue
      } else {
        break
      }
    }
    return data
  }
}

/// Marks each line of an array task's output with its task, `[task 3] `, holding a partial
/// last line back until its newline comes (or the task ends).
public struct LinePrefixer {
  public let prefix: [UInt8]
  private var pending: [UInt8] = []

  public init(task: Int) { prefix = Array("[task \(task)] ".utf8) }

  public mutating func feed(_ data: Data) -> Data {
    var out = Data()
    for byte in data {
      pending.append(byte)
      if byte == UInt8(ascii: "\n") {
        out.append(contentsOf: prefix)
        out.append(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
      }
    }
    return out
  }

  /// The partial last line, with a newline so the next task's line starts cleanly.
  public mutating func finish() -> Data {
    guard !pending.isEmpty else { return Data() }
    var out = Data(prefix)
    out.append(contentsOf: pending)
    out.append(UInt8(ascii: "\n"))
    pending.removeAll()
    return out
  }
}
