# eddyfs build. `make` builds build/eddyfs; `make asan` the ASan+UBSan build in
# build/asan/; `make tsan` a ThreadSanitizer build in build/tsan/; `make unit`
# builds and runs the unit tests; `make check` runs the whole suite
# (scripts/test does the same after installing what is missing).
CC      ?= cc
VERSION := 0.1.0
PKGS    := fuse3 inih libcjson sqlite3 libzstd libxxhash
CSTD    := -std=c17 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS  ?= -O2 -g
DEPFLAGS = -MMD -MP
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(PKG_CFLAGS) -DEDDY_VERSION=\"$(VERSION)\" -pthread
LIBS = $(PKG_LIBS) -pthread -lm

# Backend and common code: no libfuse (unit tests link it without FUSE).
CORE_SRC := src/fs.c src/util/log.c src/util/runtime.c \
	src/backend/dir/dir.c src/backend/dir/dir_node.c src/backend/dir/dir_ns.c \
	src/backend/dir/dir_file.c src/backend/dir/dir_readdir.c \
	src/backend/dir/dir_xattr.c src/backend/dir/dir_creds.c \
	src/backend/dir/dir_killpriv.c src/backend/dir/dir_watch.c \
	src/backend/dir/dir_watch_inotify.c src/backend/dir/dir_watch_fanotify.c src/backend/dir/dir_lock.c \
	src/layer/queue/queue.c src/layer/queue/queue_ns.c src/layer/queue/queue_state.c \
	src/layer/queue/queue_load.c src/layer/queue/queue_fate.c src/layer/queue/queue_quota.c \
	src/layer/queue/queue_claim.c \
	src/layer/chaos/chaos.c src/layer/chaos/chaos_cache.c src/layer/chaos/chaos_data.c \
	src/layer/chaos/chaos_decide.c src/layer/chaos/chaos_ns.c src/layer/chaos/chaos_rules.c \
	src/layer/chaos/chaos_nfs.c src/layer/chaos/chaos_net.c \
	src/backend/mem/mem.c src/backend/mem/mem_inode.c src/backend/mem/mem_dir.c \
	src/backend/mem/mem_pages.c src/backend/mem/mem_ns.c src/backend/mem/mem_rename.c \
	src/backend/mem/mem_attr.c src/backend/mem/mem_file.c src/backend/mem/mem_readdir.c \
	src/backend/mem/mem_xattr.c src/util/posix_acl.c src/util/fsrules.c src/util/access.c \
	src/backend/volume/vol.c src/backend/volume/vol_format.c src/backend/volume/vol_db.c \
	src/backend/volume/vol_inode.c src/backend/volume/vol_block.c \
	src/backend/volume/vol_data.c src/backend/volume/vol_ns.c src/backend/volume/vol_rename.c \
	src/backend/volume/vol_attr.c src/backend/volume/vol_file.c src/backend/volume/vol_dir.c \
	src/backend/volume/vol_xattr.c src/backend/volume/vol_perm.c src/backend/volume/vol_session.c \
	src/backend/volume/vol_follow.c src/backend/volume/vol_status.c \
	src/backend/volume/vol_lock.c src/backend/volume/vol_gc.c src/backend/volume/vol_fsck.c src/backend/volume/vol_dump.c
FUSE_SRC := src/fuse/session.c src/fuse/node_table.c src/fuse/ops_node.c \
	src/fuse/ops_file.c src/fuse/control.c src/fuse/notify.c src/fuse/wait.c \
	src/fuse/ops_count.c
CLI_SRC  := src/cli/main.c src/cli/cmd_mount.c src/cli/cmd_umount.c \
	src/cli/cmd_stats.c src/cli/cmd_chaos.c src/cli/control_client.c src/cli/mount_chaos.c src/cli/mounts.c \
	src/cli/options.c src/cli/cmd_trace.c src/cli/trace_load.c src/cli/trace_html.c src/cli/cmd_format.c \
	src/cli/cmd_status.c src/cli/cmd_fsck.c src/cli/cmd_client.c src/client/client.c src/cli/cmd_dump.c
UNIT_SRC := tests/unit/unit_main.c tests/unit/test_dir_backend.c \
	tests/unit/test_node_table.c src/fuse/node_table.c \
	tests/unit/test_mem_backend.c tests/unit/test_mem_attrs.c tests/unit/test_mem_stress.c \
	tests/unit/test_queue_layer.c tests/unit/test_chaos_layer.c tests/unit/test_vol_backend.c \
	tests/unit/test_vol_shared.c tests/unit/test_vol_batch.c tests/unit/test_vol_perm.c tests/unit/test_client.c \
	src/client/client.c

B ?= build
OBJ = $(addprefix $(B)/obj/,$(1:.c=.o))

.PHONY: all asan tsan unit check clean
all: $(B)/eddyfs $(B)/test_unit

$(B)/eddyfs: $(call OBJ,$(CORE_SRC) $(FUSE_SRC) $(CLI_SRC))
	@echo "  LD $@"; $(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(B)/test_unit: $(call OBJ,$(CORE_SRC) $(UNIT_SRC))
	@echo "  LD $@"; $(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $@"; $(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Isrc -c -o $@ $<

asan:
	$(MAKE) B=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

tsan:
	$(MAKE) B=build/tsan CFLAGS="-O1 -g -fsanitize=thread"

unit: all asan
	build/asan/test_unit

check:
	scripts/test

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
