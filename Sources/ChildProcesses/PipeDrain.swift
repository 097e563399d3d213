#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// Reads a child's stdout and stderr pipes until both reach EOF, handing each chunk to a
/// callback as it arrives. Reading both with poll() avoids the classic deadlock of a child
/// that fills one pipe while the parent blocks on the other.
public enum PipeDrain {
  public enum Stream: Sendable { case stdout, stderr }

  /// Returns when both pipes are closed or `deadline` passes (then returns false).
  @discardableResult
  public static func drain(
    _ child: ChildProcess,
    deadline: Date? = nil,
    onChunk: (Stream, Data) -> Void
  ) -> Bool {
    var open: [(fd: Int32, stream: Stream)] = []
    if let fd = child.stdoutFD { open.append((fd, .stdout)) }
    if let fd = child.stderrFD { open.append((fd, .stderr)) }
    defer { open.forEach { close($0.fd) } }
    var buffer = [UInt8](repeating: 0, count: 65536)
    while !open.isEmpty {
      var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
      var timeoutMS: Int32 = -1
      if let deadline {
        let remaining = deadline.timeIntervalSinceNow
        if remaining <= 0 { return false }
        timeoutMS = Int32(min(remaining * 1000, 1_000_000))
      }
      let ready = poll(&fds, nfds_t(fds.count), timeoutMS)
      if ready < 0 {
        if errno == EINTR { continue }
        return false
      }
      if ready == 0 { continue }
      var closed: Set<Int32> = []
      for entry in fds where entry.revents != 0 {
        let count = read(entry.fd, &buffer, buffer.count)
        if count > 0 {
          let stream = open.first { $0.fd == entry.fd }!.stream
          onChunk(stream, Data(buffer[0..<count]))
        } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
          closed.insert(entry.fd)
        }
      }
      for fd in closed { close(fd) }
      open.removeAll { closed.contains($0.fd) }
    }
    return true
  }
}
