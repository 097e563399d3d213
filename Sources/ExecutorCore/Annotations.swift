#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// GitLab's `artifacts:reports:annotations`: a JSON object mapping a heading of the job
/// page's sidebar to its links, `{"Slurm": [{"external_link": {"label": "Slurm job 4711",
/// "url": "https://portal.example/jobs/4711"}}]}` (docs.gitlab.com, ci/yaml/artifacts_reports,
/// artifactsreportsannotations; an external link needs both). Pure: the caller writes it.
public enum Annotations {
  /// Where `slurm_job_url` takes the Slurm job's id.
  public static let idPlaceholder = "{id}"

  public struct Link: Codable, Equatable, Sendable {
    public var label: String
    public var url: String
    public init(label: String, url: String) {
      self.label = label
      self.url = url
    }
  }

  /// The CI job's links: one per Slurm job when the admin set `slurm_job_url` (none
  /// otherwise: GitLab shows no link without a URL, and the ids are in the log's sections),
  /// and the published report when the job wrote one and GitLab Pages serves the project.
  /// Ids come from the job's state file and the pages URL from a CI variable, both the
  /// user's to write: only ids of letters, digits, `_`, `-` and `.` (Slurm's `4711_3`, the
  /// local backend's `local-812`), never `/` or a bare `..`, go into the admin's URL,
  /// and only an http(s) URL is linked (no `javascript:` in the job page's sidebar).
  public static func links(scheduler: String, jobIDs: [String], jobURL: String, pagesURL: String?) -> [String: [Link]] {
    var sections: [String: [Link]] = [:]
    let jobIDs = jobIDs.filter { id in
      !id.allSatisfy { $0 == "." } && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
    }
    if !jobURL.isEmpty && !jobIDs.isEmpty {
      sections[scheduler] = jobIDs.map {
        Link(label: "\(scheduler) job \($0)", url: jobURL.split(separator: idPlaceholder, omittingEmptySubsequences: false).joined(separator: $0))
      }
    }
    if let pagesURL, pagesURL.lowercased().hasPrefix("https://") || pagesURL.lowercased().hasPrefix("http://") { sections["Report"] = [Link(label: "Published report", url: pagesURL)] }
    return sections
  }

  /// The report's JSON (`{}` when there is no link: an empty report, rather than a missing
  /// file the runner warns about).
  public static func render(_ sections: [String: [Link]]) -> String {
    struct Entry: Encodable {
      var externalLink: Link
      enum CodingKeys: String, CodingKey { case externalLink = "external_link" }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(sections.mapValues { $0.map(Entry.init) })) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self) + "\n"
  }
}
