/** nginx.conf for one nchan server: one worker, an EventSource subscriber and a publisher location. */
import { NCHAN_MODULE } from "./nchan-install.ts";

/** Open files nginx may use, leaving room below them for its own descriptors. */
const FILE_HEADROOM = 100;
/** Messages kept per channel for Last-Event-ID resume: more than any scenario publishes while streams are away. */
const MESSAGE_BUFFER_LENGTH = 2_000;
/** The publisher keeps one connection open for the whole run. */
const KEEPALIVE_REQUESTS = 1_000_000;

export interface NchanConfigOptions {
  dir: string;
  port: number;
  fileLimit: number;
}

export function nchanConfig({ dir, port, fileLimit }: NchanConfigOptions): string {
  return `load_module ${NCHAN_MODULE};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${fileLimit};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;

events {
  worker_connections ${fileLimit - FILE_HEADROOM};
}

http {
  access_log off;
  keepalive_requests ${KEEPALIVE_REQUESTS};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  server {
    listen 0.0.0.0:${port};

    # The bench's readiness probe: any answer will do, as for the other peers.
    location = / {
      return 404;
    }

    location ~ ^/sub/([A-Za-z0-9_-]+)$ {
      nchan_subscriber eventsource;
      nchan_channel_id $1;
      # Like the other peers: a new subscriber gets what is published from now on.
      nchan_subscriber_first_message newest;
    }

    location ~ ^/pub/([A-Za-z0-9_-]+)$ {
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length ${MESSAGE_BUFFER_LENGTH};
      nchan_message_timeout 10m;
    }
  }
}
`;
}
