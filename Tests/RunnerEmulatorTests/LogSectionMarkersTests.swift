import Foundation
import RunnerEmulator
import TestSizes
import Testing

@Suite(.tags(.small)) struct LogSectionMarkersTests {
  /// What ci-local's terminal shows for `bytes` written to a job's log, and the log file.
  func shown(_ bytes: String, colour: Bool, prefix: String? = nil) throws -> (console: String, file: String) {
    let directory = NSTemporaryDirectory() + "markers-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    FileManager.default.createFile(atPath: "\(directory)/console", contents: nil)
    let handle = try #require(FileHandle(forWritingAtPath: "\(directory)/console"))
    let log = try JobLog(path: "\(directory)/job.log", console: Console(colour: colour, output: handle), prefix: prefix)
    // Split mid-marker: a pipe read can end anywhere.
    let data = Data(bytes.utf8)
    log.write(data.prefix(7))
    log.write(data.dropFirst(7))
    log.finish()
    try handle.close()
    return (try String(contentsOfFile: "\(directory)/console", encoding: .utf8), try String(contentsOfFile: "\(directory)/job.log", encoding: .utf8))
  }

  let log = """
    \u{1b}[0Ksection_start:1700000000:slurm_5_task_0[collapsed=true]\r\u{1b}[0KSlurm: task 0 (exit 0)
    [task 0] fine
    \u{1b}[0Ksection_end:1700000000:slurm_5_task_0\r\u{1b}[0K
    \u{1b}[0Ksection_start:1700000001:slurm_5_task_1\r\u{1b}[0KSlurm: task 1 (exit 2)
    [task 1] broken
    \u{1b}[0Ksection_end:1700000001:slurm_5_task_1\r\u{1b}[0K
    a line that mentions section_end: is kept
    last without newline
    """

  @Test(arguments: [false, true])
  func markersBecomeFoldedTitlesAndTheFileKeepsGitLabsBytes(colour: Bool) throws {
    let (console, file) = try shown(log, colour: colour)
    #expect(console == """
      ▸ Slurm: task 0 (exit 0)
      [task 0] fine
      ▾ Slurm: task 1 (exit 2)
      [task 1] broken
      a line that mentions section_end: is kept
      last without newline

      """)
    #expect(file == log)
  }

  @Test func prefixedJobsGetTheTitleAfterTheirPrefix() throws {
    let (console, _) = try shown(log, colour: false, prefix: "[job] ")
    #expect(console.hasPrefix("[job] ▸ Slurm: task 0 (exit 0)\n[job] [task 0] fine\n[job] ▾ Slurm: task 1"))
    #expect(!console.contains("section_start") && !console.contains("\u{1b}"))
  }
}
