package example;

import org.springframework.boot.rsocket.messaging.RSocketStrategiesCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.util.MimeType;

/** Makes the gateway's custom metadata entry available to handlers as @Header("rsgate-http") byte[]. */
@Configuration
public class RsgateConfig {
  static final MimeType RSGATE_HTTP = MimeType.valueOf("message/x.rsgate.http.v0");

  @Bean
  RSocketStrategiesCustomizer rsgateMetadata() {
    return strategies -> strategies.metadataExtractorRegistry(
        registry -> registry.metadataToExtract(RSGATE_HTTP, byte[].class, "rsgate-http"));
  }
}
