// Key dumps: memcached's "lru_crawler metadump <classes>" and "stats cachedump <class> <limit>",
// over Store::ListItems (docs/server.md, "Listing keys").
//
// cinch has one slab class, 1 (as "me" says cls=1): a dump of class 1 (or "all", "hash") lists
// every item of the connection's keyspace, a dump of other classes lists none. The items are
// written a batch at a time while the output has room, so a dump of any size holds one batch
// (ItemList) and the connection's bounded output; the batch's memory is charged to the store
// while the dump runs.
#include <algorithm>
#include <memory>

#include "proto/errors.h"
#include "server/memcache_session.h"
#include "server/reply_format.h"

namespace cinch::server {

using proto::Command;

namespace {

// Items listed per batch, and the room a dump's batch is given: a stretch of the index may add
// a few dozen items past the count.
constexpr size_t kDumpBatch = 64;
constexpr size_t kDumpItems = 2 * kDumpBatch;
// memcached's cachedump writes into one buffer of 2 MB and stops where the next line would not
// fit (with "END\r\n"); so does cinch's.
constexpr size_t kCachedumpBytes = size_t{2} << 20;

// memcached's uriencode: every byte but letters, digits and "-._~" as %XX (upper case).
void AppendUriEncoded(std::string_view key, LineBuilder* line) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : key) {
    const auto b = static_cast<unsigned char>(c);
    const bool plain = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                       b == '-' || b == '.' || b == '_' || b == '~';
    if (plain) {
      line->Char(c);
    } else {
      line->Char('%').Char(kHex[b >> 4]).Char(kHex[b & 15]);
    }
  }
}

}  // namespace

bool MemcacheSession::IsDump(const proto::Request& r) {
  return r.command == Command::kLruCrawler ||
         (r.command == Command::kStats && r.stats_arg == "cachedump");
}

bool MemcacheSession::StartDump(const proto::Request& r, size_t consumed, net::Output* out) {
  const bool metadump = r.command == Command::kLruCrawler;
  if (metadump) {
    // As memcached: a metadump writes straight to the socket, after the replies before it.
    if (out->pending() > 0) {
      out->Append(proto::reply::kMetadumpPipelined);
      return false;
    }
    if (context_->metadump_running.exchange(true, std::memory_order_acq_rel)) {
      out->Append(proto::reply::kCrawlerBusy);
      return false;
    }
  }
  // The dump's state and its batch's room, charged whole while it runs.
  constexpr size_t kDumpMemory =
      sizeof(Dump) + kDumpItems * (sizeof(ListedItem) + Store::kMaxKeyLength);
  if (!store_->ChargeExternal(kDumpMemory)) {
    if (metadump) context_->metadump_running.store(false, std::memory_order_release);
    out->Append(proto::reply::kOutOfMemory);
    return false;
  }
  dump_ = std::make_unique<Dump>();
  Dump& d = *dump_;
  d.metadump = metadump;
  d.listed_class = r.number == 1;
  d.consumed = consumed;
  d.limit = metadump ? 0 : r.dump_limit;
  d.charged = kDumpMemory;
  d.list.items.reserve(kDumpItems);
  d.list.keys.reserve(kDumpItems * Store::kMaxKeyLength);
  d.cursor.done = !d.listed_class;
  return true;
}

MemcacheSession::DumpStep MemcacheSession::ContinueDump(net::Output* out, size_t output_limit) {
  Dump& d = *dump_;
  const bool with_cas = context_->options->cas_enabled;
  const uint64_t turn_start = d.cursor.stretches;
  while (true) {
    for (; d.next < d.list.items.size(); ++d.next) {
      if (out->pending() >= output_limit) return DumpStep::kOutputFull;
      const ListedItem& item = d.list.items[d.next];
      const std::string_view key = d.list.key(item);
      LineBuilder line;
      if (d.metadump) {
        line.Append("key=");
        AppendUriEncoded(key, &line);
        line.Append(" exp=").Number(item.expiry == 0 ? -1 : item.expiry);
        line.Append(" la=").Number(item.last_access);
        line.Append(" cas=").Number(with_cas ? item.cas : 0);
        line.Append(item.fetched_before ? " fetch=yes" : " fetch=no");
        line.Append(" cls=1 size=").Number(key.size() + item.value_size).Char('\n');
      } else {
        // memcached's cachedump leaves binary keys out ("protect from printing binary keys"):
        // raw, they could forge the reply's lines.
        if (item.binary_key) continue;
        line.Append("ITEM ").Append(key).Append(" [").Number(item.value_size);
        line.Append(" b; ").Number(item.expiry).Append(" s]").Append(proto::reply::kCrlf);
        const bool full = d.limit != 0 && d.items == d.limit;
        // memcached keeps room for "END\r\n" and its C string's NUL.
        if (full || d.bytes + line.size() + proto::reply::kEnd.size() + 1 > kCachedumpBytes) {
          d.cursor.done = true;
          d.list.clear();
          break;
        }
        ++d.items;
        d.bytes += line.size();
      }
      out->Append(line.view());
    }
    if (d.cursor.done) {
      out->Append(proto::reply::kEnd);
      return DumpStep::kDone;
    }
    d.list.clear();
    d.next = 0;
    // Without a file tier nothing the listing reads can be on the disk.
    const bool may_block = context_->promoter == nullptr;
    if (!ListNextBatch(may_block)) {
      // The next stretch has items on file: an I/O thread lists it, then resumes the session.
      tier_job_.run = &MemcacheSession::ListOnIoThread;
      tier_job_.arg = this;
      ThreadCounters::Add(counters_->tier_waits);
      context_->promoter->Submit(&tier_job_);
      return DumpStep::kWait;
    }
    // This turn has read as much of the index as one call may (a keyspace with few items in a
    // large index: a tenant's, or the default one beside tenants). The worker's other
    // connections go first: the session yields, resuming itself at once.
    if (!d.cursor.done && d.cursor.stretches - turn_start >= Store::kListStretchesPerCall &&
        tier_job_.done != nullptr) {
      tier_job_.done->Resume();
      return DumpStep::kWait;
    }
  }
}

bool MemcacheSession::ListNextBatch(bool may_block) {
  return store_->ListItems(keyspace_, &dump_->cursor, kDumpBatch, context_->options->cas_enabled,
                           may_block, &dump_->list);
}

void MemcacheSession::ListOnIoThread(void* session) {
  static_cast<MemcacheSession*>(session)->ListNextBatch(/*may_block=*/true);
}

size_t MemcacheSession::EndDump() {
  const size_t consumed = dump_->consumed;
  store_->ReleaseExternal(dump_->charged);
  if (dump_->metadump) context_->metadump_running.store(false, std::memory_order_release);
  dump_.reset();
  return consumed;
}

}  // namespace cinch::server
