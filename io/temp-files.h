// Temporary files and the promise that none is left behind: every temp path is registered and
// removed on normal exit, on failure, and from the SIGINT/SIGTERM handler.
#pragma once

#include <string>

#include "io/status.h"

namespace dsq {

// Creates `dir/.<stem>.XXXXXX`, opened for writing; registered for removal.
Status create_temp_file(const std::string& dir, const std::string& stem, std::string& path,
                        int& fd);
// Creates an anonymous file in `dir` that disappears when closed (O_TMPFILE, or create+unlink).
Status create_anonymous_file(const std::string& dir, int& fd);
// Renames a registered temp file to its final name and unregisters it.
Status commit_temp_file(const std::string& temp_path, const std::string& final_path);
// Removes a registered temp file now.
void discard_temp_file(const std::string& temp_path);
// A directory output built in place: `parent/.<stem>.XXXXXX`, registered; then files and
// subdirectories inside it, each registered as it is created (removed, files first, on failure
// or interrupt). forget_temps_under() once the directory has been renamed into place;
// discard_temps_under() removes everything registered under it now; rename_temp() follows a
// registered file that was renamed inside it.
Status create_temp_dir(const std::string& parent, const std::string& stem, std::string& path);
Status create_in_temp_dir(const std::string& path, bool dir, int& fd);
void forget_temps_under(const std::string& dir);
void discard_temps_under(const std::string& dir);
void rename_temp(const std::string& from, const std::string& to);
// Mapped inputs, so that a SIGBUS (the file shrank under the mapping) names the file and the
// offset. Names are truncated to 255 bytes; at most 256 mappings are tracked.
void remember_mapping(const std::string& name, const void* base, size_t size);
void forget_mapping(const void* base);
// Installs SIGINT/SIGTERM (remove temps, exit 130/143) and SIGBUS handlers.
void install_signal_handlers();
// While deferred, SIGINT/SIGTERM are only recorded: for the stretch after which stopping would
// leave things half done (the daemon already has the whole archive to load).
void defer_interrupts(bool defer);
// The signal recorded while deferred (0 for none), clearing it.
int take_pending_interrupt();
// The directory for spools: --tmp-dir, else $TMPDIR, else /tmp.
std::string temp_dir(const std::string& option);

// write(2) of the whole buffer, retrying on short writes.
Status write_all(int fd, const void* data, size_t size, const std::string& path);

}  // namespace dsq
