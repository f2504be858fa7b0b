// HttpClientLoop — the JDK's own HTTP client (java.net.http), as a JVM
// program uses it: N sequential GETs over one HTTP/1.1 keep-alive
// connection.  The client writes requests from the caller's thread and
// reads responses on its selector thread, so a response can be read while
// the send that asked for it is still returning.
//   java HttpClientLoop.java URL N      prints  requests=N bytes=B
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class HttpClientLoop {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpRequest req = HttpRequest.newBuilder(URI.create(args[0])).GET().build();
        int n = Integer.parseInt(args[1]);
        long bytes = 0;
        for (int i = 0; i < n; i++) {
            HttpResponse<byte[]> r = client.send(req, HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() != 200)
                throw new RuntimeException("status " + r.statusCode());
            bytes += r.body().length;
        }
        System.out.println("requests=" + n + " bytes=" + bytes);
    }
}
