{
  "targets": [
    {
      "target_name": "mixprec_gloo",
      "sources": ["src/addon.cc", "src/process_group.cc", "src/tcp_store.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "HIREDIS_NESTED_INCLUDE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti"],
      "libraries": ["-lgloo"]
    }
  ]
}
