import Foundation
import Scheduling
import TestSizes
import Testing

@Suite(.tags(.large)) struct WrapperScriptTests {
  @Test func statusFileForms() {
    #expect(WrapperScript.parseStatus("exit 0\n") == .exited(0))
    #expect(WrapperScript.parseStatus("exit 3\n") == .exited(3))
    #expect(WrapperScript.parseStatus("terminated 143\n") == .terminated(143))
    #expect(WrapperScript.parseStatus("exit") == nil)
    #expect(WrapperScript.parseStatus("") == nil)
  }

  @Test func wrapperHoldsNoVariablesAndRecordsStatus() throws {
    let directory = try makeTemporaryDirectory()
    let stage = "\(directory)/script.sh"
    try "echo out; exit 5\n".write(toFile: stage, atomically: true, encoding: .utf8)
    let wrapper = WrapperScript.render(stageScript: stage, directory: directory)
    #expect(!wrapper.contains("export "))
    try wrapper.write(toFile: "\(directory)/wrapper.sh", atomically: true, encoding: .utf8)
    let result = try ProcessCommandRunner().run(Command(["bash", "\(directory)/wrapper.sh"], environment: ["PATH": "/usr/bin:/bin"]))
    #expect(result.status == .exited(5))
    #expect(result.stdout == "out\n")
    #expect(try String(contentsOfFile: "\(directory)/status", encoding: .utf8) == "exit 5\n")
  }
}

func makeTemporaryDirectory() throws -> String {
  let path = NSTemporaryDirectory() + "ci-slurm-test-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}
