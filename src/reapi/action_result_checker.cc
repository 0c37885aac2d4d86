#include "reapi/action_result_checker.h"

#include "cinch/store.h"
#include "reapi/digests.h"

namespace cinch::reapi {

namespace {

bool Present(const rev2::Digest& digest, buildcache::BuildCache& cache) {
  buildcache::Digest d;
  return FromProto(digest, &d) && CasContains(cache, d);
}

bool FilesPresent(const rev2::Directory& dir, buildcache::BuildCache& cache) {
  for (const rev2::FileNode& file : dir.files()) {
    if (!Present(file.digest(), cache)) return false;
  }
  return true;
}

// The Tree blob is present and parses, and every file of every directory in it is present.
bool TreePresent(const rev2::Digest& tree_digest, buildcache::BuildCache& cache) {
  buildcache::Digest d;
  if (!FromProto(tree_digest, &d)) return false;
  rev2::Tree tree;
  {
    ItemRef ref;
    if (!CasGet(cache, d, &ref)) return false;
    // Parsed under the pin, released before the files are looked up.
    if (!tree.ParseFromArray(ref.value().data(), static_cast<int>(ref.value().size()))) {
      return false;
    }
  }
  if (!FilesPresent(tree.root(), cache)) return false;
  for (const rev2::Directory& child : tree.children()) {
    if (!FilesPresent(child, cache)) return false;
  }
  return true;
}

}  // namespace

bool ProtoActionResultChecker::Complete(std::string_view action_result,
                                        buildcache::BuildCache& cache) {
  rev2::ActionResult result;
  if (!result.ParseFromArray(action_result.data(), static_cast<int>(action_result.size()))) {
    return false;
  }
  for (const rev2::OutputFile& file : result.output_files()) {
    if (!Present(file.digest(), cache)) return false;
  }
  if (result.has_stdout_digest() && !Present(result.stdout_digest(), cache)) return false;
  if (result.has_stderr_digest() && !Present(result.stderr_digest(), cache)) return false;
  for (const rev2::OutputDirectory& dir : result.output_directories()) {
    if (!TreePresent(dir.tree_digest(), cache)) return false;
  }
  return true;
}

}  // namespace cinch::reapi
