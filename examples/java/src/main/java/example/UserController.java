package example;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;

import org.springframework.messaging.handler.annotation.DestinationVariable;
import org.springframework.messaging.handler.annotation.Header;
import org.springframework.messaging.handler.annotation.MessageMapping;
import org.springframework.messaging.rsocket.annotation.ConnectMapping;
import org.springframework.stereotype.Controller;

import io.rsocket.exceptions.ApplicationErrorException;
import io.rsocket.exceptions.InvalidException;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * The rsgate example service in Spring Boot: the same routes as examples/go and examples/node.
 * Routing tags come from the gateway's composite metadata (message/x.rsocket.routing.v0), which
 * is exactly what @MessageMapping reads. See docs/BACKENDS.md.
 */
@Controller
public class UserController {

  record User(String id, String name) {}
  record Tick(int tick) {}

  // GET /api/users/{id} -> route users.{id}
  @MessageMapping("users.{id}")
  public Mono<User> user(@DestinationVariable String id) {
    if (!id.matches("[0-9]+")) {
      // ERROR[INVALID] -> HTTP 400
      return Mono.error(new InvalidException("user id \"" + id + "\" is not a number"));
    }
    if (id.equals("0")) {
      // ERROR[APPLICATION_ERROR] -> HTTP 500, or 404 with the route's errors map ("not found": 404)
      return Mono.error(new ApplicationErrorException("not found: user 0"));
    }
    return Mono.just(new User(id, "user " + id));
  }

  // POST /api/echo -> route echo; the gateway entry is extracted by RsgateConfig under "rsgate-http".
  @MessageMapping("echo")
  public Mono<Map<String, Object>> echo(String body,
      @Header(name = "rsgate-http", required = false) byte[] http) {
    String method = http == null ? null : RsgateHttp.method(http);
    String target = http == null ? null : RsgateHttp.target(http);
    return Mono.just(Map.of("body", body, "method", String.valueOf(method), "target", String.valueOf(target)));
  }

  // GET /api/ticks/{n} -> route ticks.{n}; Reactor honours the gateway's REQUEST_N.
  @MessageMapping("ticks.{n}")
  public Flux<Tick> ticks(@DestinationVariable int n) {
    return Flux.range(0, n).map(Tick::new);
  }

  // WebSocket /ws/chat -> request-channel chat
  @MessageMapping("chat")
  public Flux<Map<String, String>> chat(Flux<String> messages) {
    return messages.map(m -> Map.of("echo", m));
  }

  // POST /api/log -> fire-and-forget log
  @MessageMapping("log")
  public Mono<Void> log(String body) {
    System.out.println("log: " + body);
    return Mono.empty();
  }

  /** Decodes the gateway's request entry (docs/METADATA.md): version, kind, method, target, headers. */
  static final class RsgateHttp {
    static String method(byte[] b) {
      int len = b[2] & 0xff;
      return new String(b, 3, len, StandardCharsets.ISO_8859_1);
    }

    static String target(byte[] b) {
      int o = 3 + (b[2] & 0xff);
      int len = ((b[o] & 0xff) << 8) | (b[o + 1] & 0xff);
      return new String(b, o + 2, len, StandardCharsets.ISO_8859_1);
    }
  }
}
