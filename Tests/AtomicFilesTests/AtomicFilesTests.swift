import AtomicFiles
import Foundation
import TestSizes
import Testing

@Suite(.tags(.medium)) struct AtomicFilesTests {
  let directory = NSTemporaryDirectory() + "atomic-" + UUID().uuidString

  func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

  @Test func aPlantedSymlinkAtTheTemporaryNameIsNeverWrittenThrough() throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let victim = "\(directory)/victim"
    try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
    // The name the writer will use, planted before it runs (the old writers opened it with
    // O_TRUNC or FileManager.createFile and wrote through the link).
    try FileManager.default.createSymbolicLink(atPath: "\(directory)/.out.tmp-\(getpid())", withDestinationPath: victim)
    try AtomicFiles.write("new\n", to: "\(directory)/out", mode: 0o600)
    #expect(read(victim) == "precious\n")
    #expect(read("\(directory)/out") == "new\n")
    let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/out")
    #expect((attributes[.posixPermissions] as? Int) == 0o600)
  }

  @Test func aFailedSetLeavesEveryOldFileAsItWas() throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try "old\n".write(toFile: "\(directory)/a", atomically: false, encoding: .utf8)
    #expect(throws: AtomicFiles.WriteError.self) {
      try AtomicFiles.write([(Data("new\n".utf8), "\(directory)/a"), (Data("x".utf8), "\(directory)/missing/b")])
    }
    #expect(read("\(directory)/a") == "old\n")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["a"])
  }

  @Test func theErrorIsOneLineWithThePathAndTheOSReason() {
    #expect(throws: AtomicFiles.WriteError(path: "/proc/nope/x", reason: "No such file or directory")) {
      try AtomicFiles.write("x", to: "/proc/nope/x")
    }
    #expect(AtomicFiles.WriteError(path: "/p", reason: "Permission denied").description == "cannot write /p: Permission denied")
  }
}
