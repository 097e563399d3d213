import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The main job as a person meets it: the two example specs through ci-gen, the generated
/// pipelines through ci-local and the four executables (on Slurm when it is up, and always
/// in CI), then each published dashboard used in headless Chromium through Selenium
/// (Browser/check_dashboard.py): nothing fetched but file: URLs, no console errors, every
/// control changes the plot, tooltips, text size and screenshots at 412 and 1280 px.
@Suite(.tags(.large), .serialized) struct ExampleReportTests {
  /// Kept after the run (the rest of the workspace is removed) so a person can look.
  static let screenshots = NSTemporaryDirectory() + "ci-slurm-report-screenshots"

  struct Workspace {
    let tmp: String
    let env: [String: String]

    init(backend: Backend) throws {
      tmp = NSTemporaryDirectory() + "ci-report-" + UUID().uuidString.prefix(8)
      try FileManager.default.createDirectory(atPath: "\(tmp)/home", withIntermediateDirectories: true)
      var env = ProcessInfo.processInfo.environment
      env["PATH"] = "\(Package.bin):" + (env["PATH"] ?? "/usr/bin:/bin")
      env["HOME"] = "\(tmp)/home"  // the jobs' ${SCRATCH:-$HOME/scratch} data lands here
      env["CI_SLURM_BACKEND"] = backend.rawValue
      env["CI_SLURM_DATA_ROOT"] = "\(tmp)/driver"
      env["CI_SLURM_SETTINGS"] = Package.rootSettings
      env["SCRATCH"] = nil
      self.env = env
    }

    /// Copies the example, generates its pipeline and runs it; returns the report's path.
    func runExample(_ name: String, variables: [String]) throws -> String {
      let project = try copyExample(name)
      _ = try runPipeline(project, variables: variables)
      let pipelines = try FileManager.default.contentsOfDirectory(atPath: "\(project)/.ci-local/pipelines")
      try #require(pipelines.count == 1)
      return "\(project)/.ci-local/pipelines/\(pipelines[0])/artifacts/publish/public/index.html"
    }

    func copyExample(_ name: String) throws -> String {
      let project = "\(tmp)/\(name)"
      try FileManager.default.copyItem(atPath: "\(Package.root)/examples/\(name)", toPath: project)
      try? FileManager.default.removeItem(atPath: "\(project)/.ci-local")
      return project
    }

    /// ci-gen, then ci-local two jobs at a time; its output, once the pipeline passed.
    func runPipeline(_ project: String, variables: [String]) throws -> String {
      let generated = try run(["ci-gen", "generate", "pipeline.yml", "-o", ".gitlab-ci.yml"], env: env, cwd: project)
      #expect(generated.status == .exited(0), "\(generated.stderr)")
      let pipeline = try run(
        ["ci-local", ".gitlab-ci.yml", "--project", ".", "--jobs", "2"] + variables.flatMap { ["--variable", $0] }, env: env,
        cwd: project, timeout: 900)
      try #require(pipeline.status == .exited(0), "\(project): \(pipeline.stdout.suffix(3000))\n\(pipeline.stderr.suffix(2000))")
      return pipeline.stdout
    }
  }

  /// The data set served over HTTP the way a data portal would (the spec's DATA_URL), at
  /// this host's address: the compute nodes reach it there (their loopback is their own).
  struct DataServer {
    let url: String
    let process: ChildProcess

    init(serving directory: String) throws {
      let port = try ExampleReportTests.freePort()
      process = try ChildProcess(
        arguments: ["python3", "-m", "http.server", String(port), "--bind", Cluster.hostAddress, "--directory", directory],
        environment: ProcessInfo.processInfo.environment)
      url = "http://\(Cluster.hostAddress):\(port)"
      _ = waitFor("the data server", seconds: 20) {
        (try? run(["bash", "-c", "exec 3<>/dev/tcp/\(Cluster.hostAddress)/\(port)"], env: [:], timeout: 5))?.status == .exited(0)
      }
    }

    func stop() {
      process.signal(SIGKILL)
      _ = process.wait()
    }
  }

  /// Runs the browser check on a published page; its lines say what passed and failed.
  func check(report: String, kind: String, title: String, jobs: Int) throws {
    let html = try String(contentsOfFile: report, encoding: .utf8)
    #expect(html.contains("<title>\(title)</title>"))
    // Self-contained: the only URL in the page is SVG's namespace (the DAG).
    let urls = html.components(separatedBy: "http").dropFirst().filter { !$0.hasPrefix("://www.w3.org/2000/svg") }
    #expect(urls.isEmpty, "the report refers to \(urls.prefix(3).map { "http" + $0.prefix(40) })")
    let jobTable = html.components(separatedBy: "<table id=\"jobs\">").last ?? ""
    #expect(jobTable.components(separatedBy: "<tr><td>").count - 1 == jobs, "CI jobs in the table")
    let directory = (report as NSString).deletingLastPathComponent
    #expect(FileManager.default.fileExists(atPath: "\(directory)/plotly.min.js"))
    let shots = "\(Self.screenshots)/\(kind)"
    try? FileManager.default.removeItem(atPath: shots)
    let script = "\(Package.root)/Tests/ExecutorEndToEndTests/Browser/check_dashboard.py"
    // The data figure plus the timeline; the SVD dashboard plus the timeline.
    let result = try run(
      ["python3", script, report, "--kind", kind, "--shots", shots, "--figures", "2"], env: ProcessInfo.processInfo.environment,
      timeout: 300)
    let failed = result.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
    #expect(result.status == .exited(0), "check_dashboard: \(failed.joined(separator: "; "))\n\(result.stderr.suffix(2000))")
    #expect(result.stdout.contains("check_dashboard: \(kind): all checks passed"), "\(result.stdout.suffix(2000))")
    print("ExampleReportTests: \(kind) dashboard screenshots in \(shots)")
  }

  @Test(arguments: Backend.slurmRequired ? [Backend.slurm] : [Backend.local])
  func svdExampleEndToEndAndItsReportInChromium(backend: Backend) throws {
    let space = try Workspace(backend: backend)
    defer { try? FileManager.default.removeItem(atPath: space.tmp) }
    let report = try space.runExample("svd-mapreduce", variables: ["SEEDS=0-7"])
    let reduce = try JSONSerialization.jsonObject(
      with: Data(contentsOf: URL(fileURLWithPath: "\(space.tmp)/home/scratch/svd-mapreduce/deriv/reduce.json"))) as? [String: Any]
    #expect(reduce?["blocks"] as? Int == 8)
    let reduceError = try #require(reduce?["reduce_error"] as? Double)
    let single = try #require(reduce?["mean_single_block_error"] as? Double)
    #expect(reduceError < single)
    // map, reduce, visualize, publish: four CI jobs, one Slurm (or local) job each.
    try check(report: report, kind: "svd", title: "SVD map/reduce", jobs: 4)
  }

  @Test(arguments: Backend.slurmRequired ? [Backend.slurm] : [Backend.local])
  func dataPipelineEndToEndOverLoopbackHTTPAndItsReportInChromium(backend: Backend) throws {
    let space = try Workspace(backend: backend)
    defer { try? FileManager.default.removeItem(atPath: space.tmp) }
    let server = try DataServer(serving: "\(Package.root)/examples/data-pipeline/data")
    defer { server.stop() }
    let report = try space.runExample("data-pipeline", variables: ["DATA_URL=\(server.url)"])
    let raw = "\(space.tmp)/home/scratch/data-pipeline/raw/sub-01/sub-01.csv"
    #expect(FileManager.default.fileExists(atPath: raw))
    #expect(!FileManager.default.fileExists(atPath: raw + ".part"))
    // download, convert, analyze, gather for two items; visualize; publish.
    try check(report: report, kind: "data", title: "Course data pipeline", jobs: 10)
  }

  /// The lines ci-local streamed for one CI job (two jobs at a time: each line after its name).
  static func lines(of job: String, in output: String) -> [String] {
    output.split(separator: "\n").filter { $0.hasPrefix("[\(job)] ") }.map(String.init)
  }

  /// GitLab's "Retry" and a rerun of the pipeline: the generated data pipeline run again
  /// finds every output up to date but the page; one item's data changed, only that
  /// item's chain (and the figures and page over all items) is made again.
  @Test(arguments: Backend.available)
  func aRerunRecomputesNothingAndAChangedItemRerunsOnlyItsChain(backend: Backend) throws {
    let space = try Workspace(backend: backend)
    defer { try? FileManager.default.removeItem(atPath: space.tmp) }
    let project = try space.copyExample("data-pipeline")
    let server = try DataServer(serving: "\(project)/data")
    defer { server.stop() }
    let variables = ["DATA_URL=\(server.url)"]
    let perItem = ["download", "convert", "analyze", "analyze-gather"]
    let jobs = perItem.flatMap { ["\($0) sub-01", "\($0) sub-02"] } + ["visualize", "publish"]
    func upToDate(_ job: String, _ output: String) -> Bool {
      let lines = Self.lines(of: job, in: output)
      return !lines.isEmpty && lines.contains { $0.contains("up to date: ") }
    }

    let first = try space.runPipeline(project, variables: variables)
    for job in jobs { #expect(!upToDate(job, first), "first run, \(job): \(Self.lines(of: job, in: first).suffix(5))") }

    // publish renders again, and only it: its page shows this pipeline's CI jobs, which
    // are new ones in every pipeline.
    let rerun = try space.runPipeline(project, variables: variables)
    for job in jobs.dropLast() { #expect(upToDate(job, rerun), "rerun, \(job) made something: \(Self.lines(of: job, in: rerun).suffix(8))") }
    #expect(Self.lines(of: "publish", in: rerun).contains { $0.contains("publish: public/index.html: 1 figures, 10 CI jobs") })
    // Every analyze shard said so (a Slurm array of 4 tasks per item).
    #expect(Self.lines(of: "analyze sub-01", in: rerun).filter { $0.contains("up to date: analyze sub-01 shard") }.count == 4)

    // sub-02's recording grows by a row; the spec names its new checksum.
    let csv = "\(project)/data/sub-02.csv"
    let handle = try #require(FileHandle(forWritingAtPath: csv))
    handle.seekToEndOfFile()
    handle.write(Data("300.0,70.00,32.400,rest\n".utf8))
    try handle.close()
    let spec = "\(project)/pipeline.yml"
    let oldSum = "f4fd515e8e9155f770017e887354e2a7b2f2c5cf81ab54d97d7d68c8f32cc0e4"
    let newSum = try #require(run(["sha256sum", csv], env: [:]).stdout.split(separator: " ").first.map(String.init))
    let text = try String(contentsOfFile: spec, encoding: .utf8)
    try #require(text.contains(oldSum))
    try text.replacingOccurrences(of: oldSum, with: newSum).write(toFile: spec, atomically: true, encoding: .utf8)

    let changed = try space.runPipeline(project, variables: variables)
    for job in perItem.map({ "\($0) sub-01" }) { #expect(upToDate(job, changed), "sub-01 unchanged, but \(job) made something") }
    for job in perItem.map({ "\($0) sub-02" }) + ["visualize", "publish"] {
      #expect(!upToDate(job, changed), "sub-02 changed, but \(job) found its output up to date: \(Self.lines(of: job, in: changed).suffix(5))")
    }
    let summary = try JSONSerialization.jsonObject(
      with: Data(contentsOf: URL(fileURLWithPath: "\(space.tmp)/home/scratch/data-pipeline/deriv/sub-02/summary.json"))) as? [String: Any]
    #expect(summary?["rows"] as? Int == 3001, "sub-02's gathered rows")
  }

  static func freePort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
    }
    try #require(bound)
    return Int(UInt16(bigEndian: address.sin_port))
  }
}
