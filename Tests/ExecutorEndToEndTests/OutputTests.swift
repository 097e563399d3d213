import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Big outputs at the end of a job: nothing lost, ci-run's memory bounded.
@Suite(.tags(.large)) struct OutputTests {
  /// These check the stream itself: no output_limit cuts it (CILocalTests checks the cut).
  static let unlimited = "output_limit = \"1T\"\n"

  @Test(arguments: Backend.available)
  func aBurstAtTheEndArrivesCompleteAndInOrder(backend: Backend) throws {
    // 21 MB written in the job's last moment: the final drain must read to the end.
    let job = try DriverJob(backend)
    try job.settings(Self.unlimited)
    defer { try? job.cleanup() }
    let result = try job.runScript("seq 1 3000000; echo LAST-LINE")
    #expect(result.status == .exited(0), "\(result.stderr)")
    var expected = (1...3_000_000).map { "\($0)\n" }.joined()
    expected += "LAST-LINE\n"
    #expect(result.stdout.utf8.count == expected.utf8.count)
    #expect(result.stdout == expected, "the log is incomplete or out of order")
  }

  @Test(arguments: Backend.available)
  func anArrayTasksBurstArrivesCompleteAndInOrder(backend: Backend) throws {
    let job = try DriverJob(backend, parameters: "--array=0-1")
    try job.settings(Self.unlimited)
    defer { try? job.cleanup() }
    let result = try job.runScript("seq 1 1000000; echo LAST-LINE")
    #expect(result.status == .exited(0), "\(result.stderr)")
    for task in 0...1 {
      let prefix = "[task \(task)] "
      let lines = result.stdout.split(separator: "\n").filter { $0.hasPrefix(prefix) }.map { $0.dropFirst(prefix.count) }
      #expect(lines.count == 1_000_001, "task \(task) lost lines")
      #expect(lines.last == "LAST-LINE")
      #expect(lines.dropLast().enumerated().allSatisfy { Int($0.element) == $0.offset + 1 }, "task \(task) out of order")
    }
  }

  @Test(arguments: Backend.available)
  func aThreeHundredMegabyteLineKeepsCiRunSmall(backend: Backend) throws {
    // An array task's line is held by the [task N] prefixer: it must be passed on in
    // pieces, not kept whole (it grew ci-run to 546 MB).
    let job = try DriverJob(backend, parameters: "--array=0")
    try job.settings(Self.unlimited)
    defer { try? job.cleanup() }
    let size = 300_000_000
    let child = try job.startScript("head -c \(size) /dev/zero | tr '\\0' x\nsleep 2")
    var peakKiB = 0
    while child.poll() == nil {
      peakKiB = max(peakKiB, Self.highWaterMarkKiB(of: child.pid) ?? 0)
      Thread.sleep(forTimeInterval: 0.05)
    }
    #expect(child.wait() == .exited(0))
    print("ci-run peak RSS (VmHWM) with a 300 MB line: \(peakKiB / 1024) MB")
    #expect(peakKiB > 0 && peakKiB < 64 * 1024, "ci-run grew to \(peakKiB / 1024) MB")
    // Every byte arrived, in 64 KiB pieces marked as continued after the first.
    let handle = try #require(FileHandle(forReadingAtPath: "\(job.tmp)/run.out"))
    defer { try? handle.close() }
    var xs = 0
    var pieces = 0
    var carry = Data()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
      carry.append(chunk)
      while let newline = carry.firstIndex(of: UInt8(ascii: "\n")) {
        let line = carry[carry.startIndex..<newline]
        // The task's section markers (ci-run writes them around the task's output).
        if line.first == 0x1b {
          carry.removeSubrange(carry.startIndex...newline)
          continue
        }
        let prefix = pieces == 0 ? "[task 0] " : "[task 0+] "
        #expect(line.starts(with: Data(prefix.utf8)), "piece \(pieces) starts with \(String(decoding: line.prefix(12), as: UTF8.self))")
        xs += line.count - prefix.utf8.count
        pieces += 1
        carry.removeSubrange(carry.startIndex...newline)
      }
    }
    #expect(carry.isEmpty)
    #expect(xs == size)
    #expect(pieces == (size + 65535) / 65536)
  }

  /// VmHWM (the peak resident set) from /proc, in KiB; nil once the process is gone.
  static func highWaterMarkKiB(of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return nil }
    return Int(line.split(separator: " ").dropFirst().first ?? "")
  }
}
