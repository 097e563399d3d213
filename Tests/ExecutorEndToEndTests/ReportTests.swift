import ChildProcesses
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The main job as a person meets it: the two example specs through ci-gen, the generated
/// pipelines through ci-local and the four executables (on Slurm when it is up, and always
/// in CI), then each report opened in headless Chromium: figures drawn with a size and
/// shapes, the CI jobs table filled, nothing fetched from outside, no console messages,
/// and screenshots at phone and desktop widths.
@Suite(.serialized) struct ExampleReportTests {
  static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

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
      let project = "\(tmp)/\(name)"
      try FileManager.default.copyItem(atPath: "\(Package.root)/examples/\(name)", toPath: project)
      try? FileManager.default.removeItem(atPath: "\(project)/.ci-local")
      let generated = try run(["ci-gen", "generate", "pipeline.yml", "-o", ".gitlab-ci.yml"], env: env, cwd: project)
      #expect(generated.status == .exited(0), "\(generated.stderr)")
      let pipeline = try run(
        ["ci-local", ".gitlab-ci.yml", "--project", ".", "--jobs", "2"] + variables.flatMap { ["--variable", $0] }, env: env,
        cwd: project, timeout: 900)
      try #require(pipeline.status == .exited(0), "\(name): \(pipeline.stdout.suffix(3000))\n\(pipeline.stderr.suffix(2000))")
      let pipelines = try FileManager.default.contentsOfDirectory(atPath: "\(project)/.ci-local/pipelines")
      try #require(pipelines.count == 1)
      return "\(project)/.ci-local/pipelines/\(pipelines[0])/artifacts/publish/public/index.html"
    }
  }

  struct Rendered: Decodable {
    struct Figure: Decodable {
      var width: Double
      var height: Double
      var shapes: Int
    }
    var figures: [Figure]
    var jobRows: Int
    var tables: Int
    var resources: [String]
    var title: String
  }

  /// Loads the report in an iframe of a probe page (same directory, file access allowed)
  /// and reads back what was laid out; Chromium's console goes to stderr.
  func render(_ report: String, tmp: String) throws -> (Rendered, consoleLines: [String]) {
    let chromium = try #require(Self.chromium, "chromium is not installed (scripts/test installs it with apt)")
    let directory = (report as NSString).deletingLastPathComponent
    let probe = "\(directory)/probe.html"
    try """
    <!DOCTYPE html><html><body><pre id="result">pending</pre>
    <iframe id="report" src="index.html" style="width:1280px;height:3000px"></iframe>
    <script>
    document.getElementById('report').addEventListener('load', function () {
      var w = document.getElementById('report').contentWindow, d = w.document;
      var figures = Array.prototype.map.call(d.querySelectorAll('figure svg'), function (svg) {
        var box = svg.getBoundingClientRect();
        return {width: box.width, height: box.height, shapes: svg.querySelectorAll('polyline, rect.bar, circle').length};
      });
      var resources = w.performance.getEntriesByType('resource').map(function (r) { return r.name; });
      var jobTable = Array.prototype.filter.call(d.querySelectorAll('table'), function (t) {
        return t.caption && t.caption.textContent.indexOf('jobs') >= 0; })[0];
      document.getElementById('result').textContent = JSON.stringify({
        figures: figures, jobRows: jobTable ? jobTable.querySelectorAll('tr').length - 1 : 0,
        tables: d.querySelectorAll('table').length, resources: resources, title: d.title});
    });
    </script></body></html>
    """.write(toFile: probe, atomically: true, encoding: .utf8)
    let common = [
      chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(tmp)/chromium", "--allow-file-access-from-files",
      "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
    ]
    let dump = try run(common + ["--dump-dom", "file://\(probe)"], env: ProcessInfo.processInfo.environment, timeout: 120)
    let dom = dump.stdout
    guard let start = dom.range(of: "<pre id=\"result\">"), let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex) else {
      Issue.record("no result in Chromium's DOM: \(dom.prefix(500)) \(dump.stderr.suffix(1500))")
      return (Rendered(figures: [], jobRows: 0, tables: 0, resources: [], title: ""), [])
    }
    let json = String(dom[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&amp;", with: "&")
      .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
    let rendered = try JSONDecoder().decode(Rendered.self, from: Data(json.utf8))
    let console = dump.stderr.split(separator: "\n").map(String.init).filter { $0.contains("CONSOLE") }
    return (rendered, console)
  }

  /// A PNG's size from its IHDR chunk.
  func pngSize(_ path: String) throws -> (Int, Int) {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    try #require(data.count > 24 && data.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(path) is not a PNG")
    func word(_ offset: Int) -> Int { data[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
    return (word(16), word(20))
  }

  func check(report: String, tmp: String, figures: Int, jobs: Int, title: String) throws {
    let html = try String(contentsOfFile: report, encoding: .utf8)
    // Self-contained: the only URL in the page is SVG's namespace.
    let urls = html.components(separatedBy: "http").dropFirst().filter { !$0.hasPrefix("://www.w3.org/2000/svg") }
    #expect(urls.isEmpty, "the report refers to \(urls.prefix(3).map { "http" + $0.prefix(40) })")
    let (rendered, console) = try render(report, tmp: tmp)
    #expect(rendered.title == title)
    #expect(rendered.figures.count == figures)
    for figure in rendered.figures {
      #expect(figure.width > 300 && figure.height > 150, "a figure laid out at \(figure.width)x\(figure.height)")
      #expect(figure.shapes > 0, "a figure with nothing drawn")
    }
    #expect(rendered.jobRows == jobs)
    #expect(rendered.resources.allSatisfy { $0.hasPrefix("file://") }, "fetched: \(rendered.resources)")
    #expect(console.isEmpty, "console: \(console)")
    let chromium = try #require(Self.chromium)
    for (label, width, height) in [("phone", 412, 915), ("desktop", 1280, 2400)] {
      let shot = "\(tmp)/\(title.filter(\.isLetter))-\(label).png"
      let result = try run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(tmp)/chromium", "--hide-scrollbars",
         "--window-size=\(width),\(height)", "--screenshot=\(shot)", "file://\(report)"],
        env: ProcessInfo.processInfo.environment, timeout: 120)
      #expect(FileManager.default.fileExists(atPath: shot), "no screenshot: \(result.stderr.suffix(1000))")
      let size = try pngSize(shot)
      #expect(size == (width, height))
      // A blank page compresses to a few kilobytes; figures, tables and text do not.
      let bytes = (try FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
      #expect(bytes > 30_000, "\(shot) is \(bytes) bytes: nothing drawn?")
    }
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
    try check(report: report, tmp: space.tmp, figures: 2, jobs: 4, title: "SVD map/reduce")
  }

  @Test(arguments: Backend.slurmRequired ? [Backend.slurm] : [Backend.local])
  func dataPipelineEndToEndOverLoopbackHTTPAndItsReportInChromium(backend: Backend) throws {
    let space = try Workspace(backend: backend)
    defer { try? FileManager.default.removeItem(atPath: space.tmp) }
    // A free loopback port for the data set's HTTP server.
    let port = try freePort()
    let server = try ChildProcess(
      arguments: ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", "\(Package.root)/examples/data-pipeline/data"],
      environment: ProcessInfo.processInfo.environment)
    defer {
      server.signal(SIGKILL)
      _ = server.wait()
    }
    _ = waitFor("the data server", seconds: 20) { (try? run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"], env: [:], timeout: 5))?.status == .exited(0) }
    let report = try space.runExample("data-pipeline", variables: ["DATA_URL=http://127.0.0.1:\(port)"])
    let raw = "\(space.tmp)/home/scratch/data-pipeline/raw/sub-01/sub-01.csv"
    #expect(FileManager.default.fileExists(atPath: raw))
    #expect(!FileManager.default.fileExists(atPath: raw + ".part"))
    // download, convert, analyze, gather for two items; visualize; publish.
    try check(report: report, tmp: space.tmp, figures: 2, jobs: 10, title: "Course data pipeline")
  }

  func freePort() throws -> Int {
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
